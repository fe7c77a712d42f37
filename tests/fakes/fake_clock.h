#ifndef TESTS_FAKES_FAKE_CLOCK_H_
#define TESTS_FAKES_FAKE_CLOCK_H_

// FakeClock is a Clock whose time only moves when someone sleeps or calls
// Advance: SleepUntil jumps straight to the wake-up time, so tests of rate
// limits and Retry-After never really wait. Thread-safe.

#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"

namespace posthog_gateway::test_support {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  bool SleepUntil(absl::Time until, const std::function<bool()>& cancelled) override {
    if (cancelled && cancelled()) return false;
    absl::MutexLock lock(&mu_);
    now_ = std::max(now_, until);
    return true;
  }

  void Advance(absl::Duration by) {
    absl::MutexLock lock(&mu_);
    now_ += by;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_FAKE_CLOCK_H_
