#include "server/paging/fetch_pool.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace posthog_gateway {

FetchPool::FetchPool(int threads) {
  const int wanted = std::max(1, threads);
  threads_.reserve(wanted);
  for (int i = 0; i < wanted; ++i) {
    try {
      threads_.emplace_back([this] { Work(); });
    } catch (const std::system_error& error) {
      // Out of threads (RLIMIT_NPROC, memory): serve with those that started.
      LogError("list fetch thread not started", {{"started", absl::StrCat(threads_.size())},
                                                 {"wanted", absl::StrCat(wanted)},
                                                 {"error", error.what()}});
      break;
    }
  }
}

FetchPool::~FetchPool() {
  std::deque<absl::AnyInvocable<void() &&>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(tasks_);
  }
  for (std::thread& thread : threads_) thread.join();
  // `dropped` is destroyed outside the lock: a task's captures may take
  // locks of their own when released.
}

FetchPool* FetchPool::Default() {
  static FetchPool* const pool = new FetchPool(kDefaultThreads);
  return pool;
}

bool FetchPool::Submit(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || threads_.empty()) return false;
  tasks_.push_back(std::move(task));
  return true;
}

int64_t FetchPool::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(tasks_.size());
}

void FetchPool::Work() {
  while (true) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace posthog_gateway
