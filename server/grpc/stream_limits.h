#ifndef SERVER_GRPC_STREAM_LIMITS_H_
#define SERVER_GRPC_STREAM_LIMITS_H_

// StreamLimits caps the streams open at once (ListPersons, ListFlags, ListGroups,
// StreamCaptureEvents, WatchFlagDefinitions, flagd's EventStream): in total
// (server.max_streams) and per caller (server.max_streams_per_caller, the
// caller as the authorizer names it, server/authz/authorizer.h). A sync
// list stream holds a handler thread and look_ahead + 1 pages for as long as
// its reader takes; without a cap, callers that open streams and never read
// them exhaust the process (issue 13: 100 unread ListPersons cost 534
// threads).
//
// A stream handler takes a Slot right after authorization and keeps it until
// the stream ends (a sync handler as a local, a reactor until OnDone):
//
//   absl::StatusOr<StreamLimits::Slot> slot =
//       streams_->Open(caller, "/posthog.v1.PersonService/ListPersons");
//   if (!slot.ok()) return ToGrpcStatus(slot.status());
//
// Past a cap Open answers RESOURCE_EXHAUSTED with ErrorInfo STREAM_LIMIT_REACHED
// (metadata: limit = the configuration field, max, open, caller) and
// RetryInfo. A call without an identity (development mode) counts towards
// the total only. Zero means no cap. Thread-safe.

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace posthog_gateway {

class StreamLimits final {
 public:
  // A stream's place; the stream is counted until the Slot is destroyed.
  class Slot final {
   public:
    Slot() = default;  // Holds nothing.
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

   private:
    friend class StreamLimits;
    Slot(StreamLimits* limits, std::string caller) : limits_(limits), caller_(std::move(caller)) {}
    void Release();

    StreamLimits* limits_ = nullptr;
    std::string caller_;
  };

  // 0 (or less) for no cap.
  StreamLimits(int64_t max_streams, int64_t max_streams_per_caller);

  StreamLimits(const StreamLimits&) = delete;
  StreamLimits& operator=(const StreamLimits&) = delete;

  // Limits without a cap, for handlers tested alone. Never null.
  static StreamLimits* Unlimited();

  // Open counts a stream of `caller` ("" when the call has no identity)
  // calling `method`, or refuses it (see the class comment). The slot must
  // not outlive this object.
  absl::StatusOr<Slot> Open(absl::string_view caller, absl::string_view method)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Streams open now, in total and of `caller`.
  int64_t open() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t open(absl::string_view caller) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Release(const std::string& caller) ABSL_LOCKS_EXCLUDED(mu_);

  const int64_t max_streams_;
  const int64_t max_per_caller_;
  mutable absl::Mutex mu_;
  int64_t open_ ABSL_GUARDED_BY(mu_) = 0;
  // Only callers with a stream open: bounded by the open streams.
  absl::flat_hash_map<std::string, int64_t> by_caller_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_STREAM_LIMITS_H_
