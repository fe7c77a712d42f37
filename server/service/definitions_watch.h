#ifndef SERVER_SERVICE_DEFINITIONS_WATCH_H_
#define SERVER_SERVICE_DEFINITIONS_WATCH_H_

// DefinitionsWatch serves the WatchFlagDefinitions streams of one project
// without a thread per stream. Callers keep in-process copies of the
// definitions, so every replica of every such service holds a stream open:
// hundreds per gateway. Each stream is a gRPC callback reactor; one thread
// per project (started with the first stream) waits for the store's next
// change or the next heartbeat and offers every stream the newest message.
//
// Each state of the definitions is converted and serialized once, and the
// bytes are shared by every stream (gRPC slices are reference counted), so
// a change costs one conversion of the definitions, not one per stream.
//
// What a stream sends:
// - first, the definitions if loaded (else a heartbeat without them);
// - the definitions again whenever they change;
// - a message without them whenever only `stale` or `quota_limited` change,
//   and as a heartbeat after `heartbeat` without a message.
// A stream whose caller reads slowly has at most one write in flight; when
// it completes, the stream sends the newest state, skipping the ones between.
//
// Shutdown (or the store stopping) ends every stream with UNAVAILABLE; a
// stream opened afterwards ends at once. Thread-safe. Borrows the store,
// which must outlive it; the gRPC server must be shut down before it is
// destroyed.

#include <cstdint>
#include <memory>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/flags/definitions_store.h"

namespace posthog_gateway {

class DefinitionsWatch final {
 public:
  DefinitionsWatch(flags::DefinitionsStore* store, absl::Duration heartbeat);
  ~DefinitionsWatch();

  DefinitionsWatch(const DefinitionsWatch&) = delete;
  DefinitionsWatch& operator=(const DefinitionsWatch&) = delete;

  // Open returns the reactor of a new stream (gRPC owns it).
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Open();

  // Refuse returns a stream that ends at once with `status` (gRPC owns it).
  static grpc::ServerWriteReactor<grpc::ByteBuffer>* Refuse(grpc::Status status);

  // Shutdown ends every stream, now and later, with UNAVAILABLE. Idempotent.
  void Shutdown();

  // The number of streams open.
  size_t Streams() const;

 private:
  class Stream;

  // One state of the definitions, as the two messages a stream may send.
  struct Messages {
    std::shared_ptr<const flags::DefinitionsSnapshot> snapshot;
    grpc::ByteBuffer with_definitions;     // Empty when none are loaded.
    grpc::ByteBuffer without_definitions;  // `etag`, `stale`, `fetch_time`.
  };

  static std::shared_ptr<const Messages> Build(
      std::shared_ptr<const flags::DefinitionsSnapshot> snapshot);
  // The messages of `snapshot`, or of a newer state already built; built
  // once per state.
  std::shared_ptr<const Messages> MessagesFor(
      std::shared_ptr<const flags::DefinitionsSnapshot> snapshot) ABSL_LOCKS_EXCLUDED(mu_);

  // The thread: waits for changes and heartbeats, offers them to streams.
  void Run();
  // Offers `messages` to every stream.
  void OfferToAll(const std::shared_ptr<const Messages>& messages)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Remove(Stream* stream) ABSL_LOCKS_EXCLUDED(mu_);

  flags::DefinitionsStore* const store_;
  const absl::Duration heartbeat_;

  mutable absl::Mutex mu_;
  // Null until the first stream.
  std::shared_ptr<const Messages> latest_ ABSL_GUARDED_BY(mu_);
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_DEFINITIONS_WATCH_H_
