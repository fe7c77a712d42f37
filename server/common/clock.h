#ifndef SERVER_COMMON_CLOCK_H_
#define SERVER_COMMON_CLOCK_H_

// Clock is the gateway's one source of time and of waiting: paging, pacing,
// the authorizer, the user cache, flag definitions and capture (timestamps,
// UUIDv7s, delivery's back-off) all take a Clock*, so that tests drive rate
// limits, Retry-After, TTLs and back-off with a fake clock
// (tests/fakes/fake_clock.h) and never really sleep. RealClock() is the
// production one. Implementations are thread-safe.

#include <functional>

#include "absl/time/time.h"

namespace posthog_gateway {

class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() const = 0;

  // SleepUntil waits until `until` or until `cancelled` returns true (polled),
  // whichever is first. Returns false when cancelled.
  virtual bool SleepUntil(absl::Time until, const std::function<bool()>& cancelled) = 0;

  // SleepFor is SleepUntil(Now() + duration, cancelled).
  bool SleepFor(absl::Duration duration, const std::function<bool()>& cancelled) {
    return SleepUntil(Now() + duration, cancelled);
  }
};

// RealClock returns absl::Now() and sleeps in short slices, polling
// `cancelled` between them. Never null, never freed.
Clock* RealClock();

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_CLOCK_H_
