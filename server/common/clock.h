#ifndef SERVER_COMMON_CLOCK_H_
#define SERVER_COMMON_CLOCK_H_

// Clock is the paging engine's source of time and of waiting, so that tests
// drive rate limits and Retry-After with a fake clock and never really sleep.
// Implementations are thread-safe.

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
};

// RealClock returns absl::Now() and sleeps in short slices, polling
// `cancelled` between them. Never null, never freed.
Clock* RealClock();

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_CLOCK_H_
