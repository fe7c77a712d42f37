#ifndef EMULATOR_RATE_LIMITER_H_
#define EMULATOR_RATE_LIMITER_H_

// RateLimiter: PostHog's private-API throttles (docs/posthog-api.md §6.4), with
// DRF's SimpleRateThrottle semantics: a sliding log of request times per
// (throttle, key); a request is refused when the log is full, and the wait
// is (duration - age of the oldest entry) / (free slots + 1), rounded up.
//
// Thread-safe. Time comes from an injectable Clock so tests need no sleeps.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// Clock is the source of time for the limiter.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// SystemClock returns absl::Now(). Never null, never freed.
Clock* SystemClock();

// Throttle classes the emulator applies.
enum class ThrottleClass {
  kDefault,      // 480/minute + 4800/hour per personal key
  kPersons,      // 240/minute + 1200/hour per personal key
  kDefinitions,  // 600/minute per project
};

struct RateLimitConfig {
  bool enabled = false;
  int default_per_minute = 480;
  int default_per_hour = 4800;
  int persons_per_minute = 240;
  int persons_per_hour = 1200;
  int definitions_per_minute = 600;
  // The length of the per-minute windows (PostHog's: a minute). A test may
  // shorten it to leave room for the time a request spends between its
  // client's pacer and this log on a loaded machine; the hourly windows keep
  // their hour.
  absl::Duration minute = absl::Minutes(1);

  // FromJson reads `{"enabled", "default_per_minute", ..., "minute_ms"}`
  // over `base`; a minute_ms below 1 keeps base's.
  static RateLimitConfig FromJson(const nlohmann::json& json, RateLimitConfig base);
  nlohmann::json ToJson() const;
};

class RateLimiter final {
 public:
  explicit RateLimiter(Clock* clock) : clock_(clock) {}
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  void Configure(const RateLimitConfig& config);
  RateLimitConfig config() const;

  // Check records a request of `bucket` (the hashed key or the team) for
  // `throttle` and returns nullopt when allowed, else the whole seconds to
  // wait. Always allowed when the limiter is disabled.
  std::optional<int> Check(ThrottleClass throttle, const std::string& bucket);

  void Reset();

 private:
  struct Window {
    int limit;
    absl::Duration duration;
  };

  Clock* const clock_;
  mutable absl::Mutex mu_;
  RateLimitConfig config_ ABSL_GUARDED_BY(mu_);
  // (window name, bucket) -> request times, newest first.
  std::map<std::pair<std::string, std::string>, std::deque<absl::Time>> logs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_emulator

#endif  // EMULATOR_RATE_LIMITER_H_
