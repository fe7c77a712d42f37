#ifndef SERVER_COMMON_SINGLE_FLIGHT_CACHE_H_
#define SERVER_COMMON_SINGLE_FLIGHT_CACHE_H_

// SingleFlightCache keeps a successful result per key for `ttl` and makes
// concurrent misses of one key share a single load: the first caller loads,
// the others wait for its result. A burst of GetCurrentUser calls thus costs
// PostHog one request.
//
// Failures are not cached. Waiters share the loader's failure too, except
// CANCELLED and DEADLINE_EXCEEDED, which belong to the loader's own call:
// then one waiter loads again with its own call.
//
// Thread-safe. Time comes from an injectable Clock.

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/clock.h"

namespace posthog_gateway {

template <typename T>
class SingleFlightCache final {
 public:
  SingleFlightCache(absl::Duration ttl, Clock* clock) : ttl_(ttl), clock_(clock) {}

  SingleFlightCache(const SingleFlightCache&) = delete;
  SingleFlightCache& operator=(const SingleFlightCache&) = delete;

  // Get returns the cached value of `key` if fresh, else the result of
  // `load` (run by this caller or by a concurrent one).
  absl::StatusOr<T> Get(const std::string& key, const std::function<absl::StatusOr<T>()>& load) {
    absl::MutexLock lock(&mu_);
    while (true) {
      Entry& entry = entries_[key];
      if (entry.value.has_value() && clock_->Now() < entry.expiry) return *entry.value;
      if (!entry.loading) break;
      const int64_t generation = entry.generation;
      auto done = [&entry, generation]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entry.generation != generation; };
      mu_.Await(absl::Condition(&done));
      if (!entry.last_failure.ok() && !IsCallLocal(entry.last_failure)) {
        return entry.last_failure;
      }
      // Success (served from the cache next turn) or the loader's own
      // cancellation (this caller loads).
    }
    Entry& entry = entries_[key];
    entry.loading = true;
    mu_.Unlock();
    absl::StatusOr<T> result = load();
    mu_.Lock();
    entry.loading = false;
    ++entry.generation;
    if (result.ok()) {
      entry.value = *result;
      entry.expiry = clock_->Now() + ttl_;
      entry.last_failure = absl::OkStatus();
    } else {
      entry.last_failure = result.status();
    }
    return result;
  }

 private:
  struct Entry {
    std::optional<T> value;
    absl::Time expiry;
    bool loading = false;
    int64_t generation = 0;
    absl::Status last_failure;
  };

  static bool IsCallLocal(const absl::Status& status) {
    return status.code() == absl::StatusCode::kCancelled ||
           status.code() == absl::StatusCode::kDeadlineExceeded;
  }

  const absl::Duration ttl_;
  Clock* const clock_;
  absl::Mutex mu_;
  // std::map: references to entries stay valid while others are added.
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_SINGLE_FLIGHT_CACHE_H_
