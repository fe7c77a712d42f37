#ifndef SERVER_GRPC_BLOCKING_CALLS_H_
#define SERVER_GRPC_BLOCKING_CALLS_H_

// BlockingCalls runs the part of a callback-API call that blocks (waiting
// for PostHog) on a thread of its own: gRPC's callback threads also read and
// write every connection, and must never wait. Such calls already wait
// milliseconds for the network, so a thread each costs little next to them.
//
//   BlockingCalls blocking;   // Destroyed after the server stopped.
//   blocking.Start([reactor] { ...; reactor->Finish(status); });
//
// With a limit, TryStart refuses a call once that many run, so that a slow
// upstream cannot make the gateway pile up threads. A thread the system
// refuses to start (std::system_error: RLIMIT_NPROC, memory) is a refusal
// too, never an abort: the caller answers RESOURCE_EXHAUSTED. The destructor
// waits for the calls still running. Thread-safe.

#include <cstdint>
#include <limits>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace posthog_gateway {

class BlockingCalls {
 public:
  // `max_running` bounds TryStart; Start ignores it.
  explicit BlockingCalls(int64_t max_running = std::numeric_limits<int64_t>::max())
      : max_running_(max_running) {}
  BlockingCalls(const BlockingCalls&) = delete;
  BlockingCalls& operator=(const BlockingCalls&) = delete;
  ~BlockingCalls();

  // Start runs `call` on a new thread; false (and `call` dropped, not run)
  // when the system refuses the thread.
  bool Start(absl::AnyInvocable<void() &&> call);

  // TryStart runs `call` (moved from) on a new thread unless max_running
  // calls already run or the system refuses the thread; then it returns
  // false and leaves `call` to the caller.
  bool TryStart(absl::AnyInvocable<void() &&>& call);

  // Running is the number of calls started and not yet returned.
  int64_t Running() const;

 private:
  // Shared with the threads: one may still be releasing the lock when the
  // destructor sees the count reach zero.
  struct State {
    absl::Mutex mu;
    int64_t running ABSL_GUARDED_BY(mu) = 0;
  };
  // Runs `call` on a new thread already counted in `state`; false (the
  // count undone, `call` left as it was) when the thread did not start.
  static bool Run(const std::shared_ptr<State>& state, absl::AnyInvocable<void() &&>& call);

  const int64_t max_running_;
  const std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_BLOCKING_CALLS_H_
