#include "server/paging/request_pacer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"

namespace posthog_gateway {
namespace {

// How long a pacer that has been taking the fleet's turns waits for the
// shared budget to answer again before it paces alone, and how often it asks
// meanwhile. A blip (one Redis command past its short deadline on a loaded
// machine, after which the client fails fast for a second) must not let this
// replica add its share on top of what the fleet already sent in the window:
// that is PostHog's 429. A real outage costs a paced request this much once.
constexpr absl::Duration kSharedGrace = absl::Seconds(3);
constexpr absl::Duration kSharedRetryStep = absl::Milliseconds(250);

}  // namespace

RequestPacer::RequestPacer(std::vector<RateWindow> windows, Clock* clock, absl::Duration margin,
                           SharedBudget* shared, std::string budget)
    : windows_(std::move(windows)),
      clock_(clock),
      margin_(margin),
      shared_(shared),
      budget_(std::move(budget)) {}

absl::Time RequestPacer::NextAllowed(int share) const {
  absl::Time next = paused_until_;
  for (const RateWindow& w : windows_) {
    if (w.limit <= 0) continue;
    const size_t limit = static_cast<size_t>(std::max(1, w.limit / std::max(1, share)));
    if (log_.size() < limit) continue;
    // The request `limit` places back must have left the window.
    next = std::max(next, log_[log_.size() - limit] + w.window + margin_);
  }
  return next;
}

void RequestPacer::Record(absl::Time now) {
  log_.push_back(now);
  absl::Duration longest;
  for (const RateWindow& w : windows_) longest = std::max(longest, w.window + margin_);
  while (!log_.empty() && log_.front() + longest < now) log_.pop_front();
}

absl::Status RequestPacer::TooLate(absl::Duration wait) {
  absl::Status status = absl::ResourceExhaustedError(
      absl::StrCat("PostHog's rate limit for this project allows the next request in ",
                   absl::FormatDuration(wait), ", after the call's deadline"));
  AttachErrorInfo(status, reasons::kUpstreamRateLimited);
  AttachRetryDelay(status, wait);
  return status;
}

absl::Status RequestPacer::Acquire(absl::Time deadline, const std::function<bool()>& cancelled) {
  while (true) {
    absl::Time next;
    bool decided = false;
    if (shared_ != nullptr) {
      // The fleet's budget decides; a 429 seen here also holds this pacer.
      absl::StatusOr<absl::Duration> wait = shared_->TakeTurn(budget_, windows_, margin_);
      if (wait.ok()) {
        std::vector<absl::Time> sent_alone;
        {
          absl::MutexLock lock(&mu_);
          if (alone_) sent_alone.assign(log_.begin(), log_.end());
          alone_ = false;
        }
        if (!sent_alone.empty()) {
          // Back in shared mode: the budget learns what this replica sent
          // alone, then decides again.
          absl::Duration longest;
          for (const RateWindow& w : windows_) longest = std::max(longest, w.window + margin_);
          shared_->Seed(budget_, sent_alone, longest);
          continue;
        }
      }
      if (wait.ok()) {
        absl::MutexLock lock(&mu_);
        const absl::Time now = clock_->Now();
        was_shared_ = true;
        failing_since_ = absl::InfinitePast();
        if (*wait <= absl::ZeroDuration() && paused_until_ <= now) {
          Record(now);
          return absl::OkStatus();
        }
        next = std::max(now + *wait, paused_until_);
        if (next > deadline) return TooLate(next - now);
        decided = true;
      } else {
        // Unreachable just after shared turns: ask again for a moment
        // before pacing alone (kSharedGrace), never past the deadline.
        absl::MutexLock lock(&mu_);
        const absl::Time now = clock_->Now();
        if (was_shared_ && !alone_) {
          if (failing_since_ == absl::InfinitePast()) failing_since_ = now;
          const absl::Time retry = now + kSharedRetryStep;
          if (retry - failing_since_ <= kSharedGrace && retry <= deadline) {
            next = retry;
            decided = true;
          }
        }
      }
    }
    if (!decided) {
      // Alone (no fleet, or its budget unreachable): this replica's share.
      const int share = shared_ != nullptr ? shared_->Replicas() : 1;
      absl::MutexLock lock(&mu_);
      alone_ = shared_ != nullptr;
      const absl::Time now = clock_->Now();
      next = NextAllowed(share);
      if (next <= now) {
        Record(now);
        return absl::OkStatus();
      }
      if (next > deadline) return TooLate(next - now);
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
  if (ErrorInfoReason(status) != reasons::kUpstreamRateLimited) return;
  const absl::Duration delay = RetryDelay(status).value_or(absl::Seconds(1));
  PauseUntil(clock_->Now() + delay);
  if (shared_ != nullptr) shared_->HoldBack(budget_, delay);
}

ProjectPacers::ProjectPacers(std::vector<RateWindow> windows, Clock* clock, SharedBudget* shared,
                             std::string kind)
    : windows_(std::move(windows)), clock_(clock), shared_(shared), kind_(std::move(kind)) {}

RequestPacer* ProjectPacers::For(const std::string& alias) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<RequestPacer>& pacer = pacers_[alias];
  if (pacer == nullptr) {
    pacer = std::make_unique<RequestPacer>(windows_, clock_, absl::Milliseconds(500), shared_,
                                           absl::StrCat(kind_, ":", alias));
  }
  return pacer.get();
}

}  // namespace posthog_gateway
