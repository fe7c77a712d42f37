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
// The messages are WatchFlagDefinitions' by default; another Format makes
// them another protocol's (flagd's EventStream: server/service/
// flagd_service.h), on the same streams and thread.
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
#include "server/grpc/stream_limits.h"

namespace posthog_gateway {

class DefinitionsWatch final {
 public:
  // One state of the definitions, as the messages a stream may send.
  struct Messages {
    std::shared_ptr<const flags::DefinitionsSnapshot> snapshot;
    // The definitions of the state built before this one (null if none).
    std::shared_ptr<const flags::CompiledDefinitions> previous_definitions;
    // For a stream that has `previous_definitions`: what changed since.
    grpc::ByteBuffer with_changes;
    // For a stream that has other definitions, or none. Empty when none
    // are loaded.
    grpc::ByteBuffer with_definitions;
    // For a stream that has these definitions: a state change (`stale`,
    // `quota_limited`) or a heartbeat.
    grpc::ByteBuffer without_definitions;
  };

  // What the streams send. Implementations are immutable and thread-safe.
  class Format {
   public:
    virtual ~Format() = default;
    // The first message of every stream, with which the stream counts as
    // having the definitions of the moment; empty: the first message is
    // the state's.
    virtual grpc::ByteBuffer Opening() const { return grpc::ByteBuffer(); }
    // Fills the buffers of `messages` (whose snapshot and previous
    // definitions are set).
    virtual void Build(Messages& messages) const = 0;
  };

  // `format` null: WatchFlagDefinitions' messages.
  DefinitionsWatch(flags::DefinitionsStore* store, absl::Duration heartbeat,
                   std::unique_ptr<const Format> format = nullptr);
  ~DefinitionsWatch();

  DefinitionsWatch(const DefinitionsWatch&) = delete;
  DefinitionsWatch& operator=(const DefinitionsWatch&) = delete;

  // Open returns the reactor of a new stream (gRPC owns it), which holds
  // `slot` (server/grpc/stream_limits.h) until it is done.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Open(StreamLimits::Slot slot = {});

  // Refuse returns a stream that ends at once with `status` (gRPC owns it).
  static grpc::ServerWriteReactor<grpc::ByteBuffer>* Refuse(grpc::Status status);

  // Shutdown ends every stream, now and later, with UNAVAILABLE. Idempotent.
  void Shutdown();

  // The number of streams open.
  size_t Streams() const;

 private:
  class Stream;

  std::shared_ptr<const Messages> Build(
      std::shared_ptr<const flags::DefinitionsSnapshot> snapshot,
      std::shared_ptr<const flags::CompiledDefinitions> previous_definitions) const;
  // The messages of `snapshot`, or of a newer state already built; built
  // once per state.
  std::shared_ptr<const Messages> MessagesFor(
      std::shared_ptr<const flags::DefinitionsSnapshot> snapshot) ABSL_LOCKS_EXCLUDED(mu_);

  // The thread: waits for changes and heartbeats, offers them to streams.
  void Run();
  // Offers `messages` to every stream.
  void OfferToAll(const std::shared_ptr<const Messages>& messages) ABSL_LOCKS_EXCLUDED(mu_);
  void Remove(Stream* stream) ABSL_LOCKS_EXCLUDED(mu_);

  flags::DefinitionsStore* const store_;
  const absl::Duration heartbeat_;
  const std::unique_ptr<const Format> format_;
  const grpc::ByteBuffer opening_;

  mutable absl::Mutex mu_;
  // Null until the first stream.
  std::shared_ptr<const Messages> latest_ ABSL_GUARDED_BY(mu_);
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_DEFINITIONS_WATCH_H_
