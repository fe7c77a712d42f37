#ifndef SERVER_PAGING_FETCH_POOL_H_
#define SERVER_PAGING_FETCH_POOL_H_

// FetchPool is the bounded set of threads that fetch list pages from PostHog
// for every list stream of the process (ListPersons, ListFlags): a stream
// queues one task per page it may fetch ahead (see page_stream.h), and at
// most `threads` pages are fetched at a time, whatever the number of open
// streams. Before it, each stream started 1 + look_ahead threads of its own:
// 100 unread ListPersons cost 534 threads, and a failed thread start aborted
// the process (issue 13).
//
// Tasks run in the order they were queued. A slow PostHog holds a thread per
// request in flight (each request is bounded by the caller's deadline and
// upstream.default_timeout), so other streams wait their turn rather than add
// threads.
//
// The threads start in the constructor; one the system refuses to start is
// logged and left out (a pool that could start none refuses every task, and
// the lists answer RESOURCE_EXHAUSTED). The destructor drops the queued tasks
// and waits for the running ones. Thread-safe.

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace posthog_gateway {

class FetchPool final {
 public:
  // The default of paging.fetch_threads.
  static constexpr int kDefaultThreads = 16;

  // Starts `threads` threads (at least 1).
  explicit FetchPool(int threads);
  ~FetchPool();

  FetchPool(const FetchPool&) = delete;
  FetchPool& operator=(const FetchPool&) = delete;

  // Default is a process-wide pool of kDefaultThreads threads, started on
  // first use and never destroyed: for streams whose owner gave none.
  static FetchPool* Default();

  // Submit queues `task`; false (and `task` dropped) when the pool has no
  // thread or is being destroyed.
  bool Submit(absl::AnyInvocable<void() &&> task) ABSL_LOCKS_EXCLUDED(mu_);

  // The threads that started.
  int threads() const { return static_cast<int>(threads_.size()); }

  // Tasks queued and not yet started (tests and metrics).
  int64_t queued() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work() ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace posthog_gateway

#endif  // SERVER_PAGING_FETCH_POOL_H_
