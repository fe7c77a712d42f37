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
// In a fleet, a pacer given a SharedBudget takes each turn from it (one
// budget for every replica, decided in Redis) and passes a 429's wait on to
// every replica; when the shared budget cannot be reached it paces alone with
// 1/Replicas() of each window (after asking again for up to 3 s when it was
// sharing until then, so that a blip does not add its share on top of the
// fleet's), and goes back to the shared budget as soon as
// it answers again, writing the requests it sent alone into it first. Its
// own log keeps every request either way.
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
#include "server/common/clock.h"
#include "server/paging/shared_budget.h"

namespace posthog_gateway {

class RequestPacer final {
 public:
  // A pacer allowing at most each window's limit; no windows, no pacing.
  // `margin` is added to each window. Borrows `clock` and `shared` (may be
  // null: alone), whose budget `budget` it takes its turns from.
  RequestPacer(std::vector<RateWindow> windows, Clock* clock,
               absl::Duration margin = absl::Milliseconds(500), SharedBudget* shared = nullptr,
               std::string budget = "");

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

  // The earliest time one more request is allowed, given the log, with
  // each window's limit divided by `share` (alone in a fleet).
  absl::Time NextAllowed(int share) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes a request sent `now` down in the log.
  void Record(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED: the next turn, `wait` away, is after the deadline.
  static absl::Status TooLate(absl::Duration wait);

  const std::vector<RateWindow> windows_;
  Clock* const clock_;
  const absl::Duration margin_;
  SharedBudget* const shared_;
  const std::string budget_;
  mutable absl::Mutex mu_;
  // Times of the recent requests, oldest first, as long as the longest window.
  std::deque<absl::Time> log_ ABSL_GUARDED_BY(mu_);
  absl::Time paused_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // The last turn was taken alone (the shared budget was unreachable): the
  // next shared one first seeds the shared budget with the log.
  bool alone_ ABSL_GUARDED_BY(mu_) = false;
  // A shared turn was taken (since the last turn alone), and since when the
  // shared budget has failed to answer (InfinitePast: it answers): a pacer
  // that was sharing waits a moment for it before pacing alone.
  bool was_shared_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time failing_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// ProjectPacers holds one RequestPacer per project alias for one kind of
// request (persons lists, flag lists, ...), each made on first use with the
// same windows, so that every call to that project's endpoint shares its
// throttle. Thread-safe; borrows the clock. Pacers live as long as it does.
class ProjectPacers final {
 public:
  // With `shared`, each project's pacer takes its turns from the fleet's
  // budget `<kind>:<alias>`.
  ProjectPacers(std::vector<RateWindow> windows, Clock* clock, SharedBudget* shared = nullptr,
                std::string kind = "");

  ProjectPacers(const ProjectPacers&) = delete;
  ProjectPacers& operator=(const ProjectPacers&) = delete;

  // For returns the pacer of project `alias`; never null.
  RequestPacer* For(const std::string& alias);

 private:
  const std::vector<RateWindow> windows_;
  Clock* const clock_;
  SharedBudget* const shared_;
  const std::string kind_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<RequestPacer>> pacers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_PAGING_REQUEST_PACER_H_
