#include "emulator/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/time/clock.h"

namespace posthog_emulator {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock();
  return clock;
}

RateLimitConfig RateLimitConfig::FromJson(const nlohmann::json& json, RateLimitConfig base) {
  if (!json.is_object()) return base;
  base.enabled = json.value("enabled", base.enabled);
  base.default_per_minute = json.value("default_per_minute", base.default_per_minute);
  base.default_per_hour = json.value("default_per_hour", base.default_per_hour);
  base.persons_per_minute = json.value("persons_per_minute", base.persons_per_minute);
  base.persons_per_hour = json.value("persons_per_hour", base.persons_per_hour);
  base.definitions_per_minute = json.value("definitions_per_minute", base.definitions_per_minute);
  if (const int64_t minute_ms = json.value("minute_ms", int64_t{0}); minute_ms > 0) {
    base.minute = absl::Milliseconds(minute_ms);
  }
  return base;
}

nlohmann::json RateLimitConfig::ToJson() const {
  return {{"enabled", enabled},
          {"default_per_minute", default_per_minute},
          {"default_per_hour", default_per_hour},
          {"persons_per_minute", persons_per_minute},
          {"persons_per_hour", persons_per_hour},
          {"definitions_per_minute", definitions_per_minute},
          {"minute_ms", absl::ToInt64Milliseconds(minute)}};
}

void RateLimiter::Configure(const RateLimitConfig& config) {
  absl::MutexLock lock(&mu_);
  config_ = config;
  logs_.clear();
}

RateLimitConfig RateLimiter::config() const {
  absl::MutexLock lock(&mu_);
  return config_;
}

void RateLimiter::Reset() {
  absl::MutexLock lock(&mu_);
  logs_.clear();
}

std::optional<int> RateLimiter::Check(ThrottleClass throttle, const std::string& bucket) {
  absl::MutexLock lock(&mu_);
  if (!config_.enabled) return std::nullopt;
  std::vector<std::pair<std::string, Window>> windows;
  switch (throttle) {
    case ThrottleClass::kDefault:
      windows = {{"burst", {config_.default_per_minute, config_.minute}},
                 {"sustained", {config_.default_per_hour, absl::Hours(1)}}};
      break;
    case ThrottleClass::kPersons:
      windows = {{"persons_burst", {config_.persons_per_minute, config_.minute}},
                 {"persons_sustained", {config_.persons_per_hour, absl::Hours(1)}}};
      break;
    case ThrottleClass::kDefinitions:
      windows = {{"definitions", {config_.definitions_per_minute, config_.minute}}};
      break;
  }
  const absl::Time now = clock_->Now();
  double wait = -1;
  for (const auto& [name, window] : windows) {
    std::deque<absl::Time>& log = logs_[{name, bucket}];
    while (!log.empty() && log.back() <= now - window.duration) log.pop_back();
    if (static_cast<int>(log.size()) >= window.limit) {
      const double remaining = absl::ToDoubleSeconds(window.duration - (now - log.back()));
      const int available = window.limit - static_cast<int>(log.size()) + 1;
      const double w = available > 0 ? remaining / available : remaining;
      wait = std::max(wait, w);
    } else {
      log.push_front(now);
    }
  }
  if (wait < 0) return std::nullopt;
  return static_cast<int>(std::ceil(wait));
}

}  // namespace posthog_emulator
