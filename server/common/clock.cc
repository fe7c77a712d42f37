#include "server/common/clock.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace posthog_gateway {
namespace {

// How often a sleeping fetcher notices a cancelled caller.
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }

  bool SleepUntil(absl::Time until, const std::function<bool()>& cancelled) override {
    while (true) {
      if (cancelled && cancelled()) return false;
      const absl::Time now = absl::Now();
      if (now >= until) return true;
      absl::SleepFor(std::min(until - now, kPollInterval));
    }
  }
};

}  // namespace

Clock* RealClock() {
  static Clock* const clock = new SystemClock();
  return clock;
}

}  // namespace posthog_gateway
