#ifndef SERVER_PAGING_REQUEST_PACER_H_
#define SERVER_PAGING_REQUEST_PACER_H_

// RequestPacer keeps the requests of one PostHog project under its private-API
// throttles (docs/posthog-api.md §6.4: persons are 240/minute and 1200/hour).
//
// PostHog throttles with Django REST framework's SimpleRateThrottle, a sliding
// log of request times per window. The pacer keeps the same log, so a burst it
// allows is one PostHog allows too: a token bucket with a full bucket would let
// a burst through that a sliding log then refuses. A small safety margin covers
// the delay between sending a request and PostHog logging it.
//
// When PostHog answers 429 anyway (other clients share the key), PauseUntil
// holds every request of the project back until the time PostHog named.
//
// Thread-safe. Time comes from an injectable Clock.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/paging/clock.h"

namespace posthog_gateway {

// One throttle window: at most `limit` requests in any `window`.
struct RateWindow {
  int limit = 0;
  absl::Duration window;
};

class RequestPacer final {
 public:
  // A pacer allowing at most each window's limit; no windows, no pacing.
  // `margin` is added to each window. Borrows `clock`.
  RequestPacer(std::vector<RateWindow> windows, Clock* clock,
               absl::Duration margin = absl::Milliseconds(500));

  RequestPacer(const RequestPacer&) = delete;
  RequestPacer& operator=(const RequestPacer&) = delete;

  // Acquire waits until one more request is allowed and records it. Returns
  // RESOURCE_EXHAUSTED with RetryInfo, without waiting, when the wait would
  // end after `deadline`; CANCELLED when `cancelled` turns true while waiting.
  absl::Status Acquire(absl::Time deadline, const std::function<bool()>& cancelled);

  // PauseUntil holds every request back until `until` (a 429's wait).
  void PauseUntil(absl::Time until);

  // Run sends one request in its turn: `send` returns absl::Status or
  // absl::StatusOr. A turn after `deadline` is Acquire's RESOURCE_EXHAUSTED,
  // and nothing is sent; a 429 answer (ErrorInfo UPSTREAM_RATE_LIMITED)
  // holds every request back for its RetryInfo delay (1 s without one).
  template <typename Send>
  auto Run(absl::Time deadline, const std::function<bool()>& cancelled, Send send)
      -> decltype(send()) {
    if (absl::Status turn = Acquire(deadline, cancelled); !turn.ok()) return turn;
    auto result = send();
    if constexpr (std::is_same_v<decltype(result), absl::Status>) {
      Observe(result);
    } else {
      Observe(result.status());
    }
    return result;
  }

 private:
  // Observe pauses every request after PostHog's 429.
  void Observe(const absl::Status& status);

  // The earliest time one more request is allowed, given the log.
  absl::Time NextAllowed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<RateWindow> windows_;
  Clock* const clock_;
  const absl::Duration margin_;
  mutable absl::Mutex mu_;
  // Times of the recent requests, oldest first, as long as the longest window.
  std::deque<absl::Time> log_ ABSL_GUARDED_BY(mu_);
  absl::Time paused_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// ProjectPacers holds one RequestPacer per project alias for one kind of
// request (persons lists, flag lists, ...), each made on first use with the
// same windows, so that every call to that project's endpoint shares its
// throttle. Thread-safe; borrows the clock. Pacers live as long as it does.
class ProjectPacers final {
 public:
  ProjectPacers(std::vector<RateWindow> windows, Clock* clock);

  ProjectPacers(const ProjectPacers&) = delete;
  ProjectPacers& operator=(const ProjectPacers&) = delete;

  // For returns the pacer of project `alias`; never null.
  RequestPacer* For(const std::string& alias);

 private:
  const std::vector<RateWindow> windows_;
  Clock* const clock_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<RequestPacer>> pacers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_PAGING_REQUEST_PACER_H_
