#include "server/paging/request_pacer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"

namespace posthog_gateway {

RequestPacer::RequestPacer(std::vector<RateWindow> windows, Clock* clock,
                           absl::Duration margin)
    : windows_(std::move(windows)), clock_(clock), margin_(margin) {}

absl::Time RequestPacer::NextAllowed() const {
  absl::Time next = paused_until_;
  for (const RateWindow& w : windows_) {
    if (w.limit <= 0) continue;
    const size_t limit = static_cast<size_t>(w.limit);
    if (log_.size() < limit) continue;
    // The request `limit` places back must have left the window.
    next = std::max(next, log_[log_.size() - limit] + w.window + margin_);
  }
  return next;
}

absl::Status RequestPacer::Acquire(absl::Time deadline,
                                   const std::function<bool()>& cancelled) {
  while (true) {
    absl::Time next;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      next = NextAllowed();
      if (next <= now) {
        log_.push_back(now);
        absl::Duration longest;
        for (const RateWindow& w : windows_) longest = std::max(longest, w.window + margin_);
        while (!log_.empty() && log_.front() + longest < now) log_.pop_front();
        return absl::OkStatus();
      }
      if (next > deadline) {
        absl::Status status = absl::ResourceExhaustedError(absl::StrCat(
            "PostHog's rate limit for this project allows the next request in ",
            absl::FormatDuration(next - now), ", after the call's deadline"));
        AttachErrorInfo(status, "UPSTREAM_RATE_LIMITED");
        AttachRetryDelay(status, next - now);
        return status;
      }
    }
    if (!clock_->SleepUntil(next, cancelled)) {
      return absl::CancelledError("the caller went away while waiting for PostHog's rate limit");
    }
  }
}

void RequestPacer::PauseUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  paused_until_ = std::max(paused_until_, until);
}

void RequestPacer::Observe(const absl::Status& status) {
  if (ErrorInfoReason(status) != "UPSTREAM_RATE_LIMITED") return;
  PauseUntil(clock_->Now() + RetryDelay(status).value_or(absl::Seconds(1)));
}

ProjectPacers::ProjectPacers(std::vector<RateWindow> windows, Clock* clock)
    : windows_(std::move(windows)), clock_(clock) {}

RequestPacer* ProjectPacers::For(const std::string& alias) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<RequestPacer>& pacer = pacers_[alias];
  if (pacer == nullptr) pacer = std::make_unique<RequestPacer>(windows_, clock_);
  return pacer.get();
}

}  // namespace posthog_gateway
