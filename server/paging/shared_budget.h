#ifndef SERVER_PAGING_SHARED_BUDGET_H_
#define SERVER_PAGING_SHARED_BUDGET_H_

// SharedBudget is a rate budget shared by every replica of a fleet (Redis:
// server/fleet/fleet_coordinator.h), so that N replicas stay under PostHog's
// per-project throttles as one gateway would. RequestPacer asks it first and
// paces alone, with its share of the budget, when it cannot be reached.
//
// Implementations are thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace posthog_gateway {

// One throttle window: at most `limit` requests in any `window`.
struct RateWindow {
  int limit = 0;
  absl::Duration window;
};

class SharedBudget {
 public:
  virtual ~SharedBudget() = default;

  // TakeTurn takes one request's turn of `budget` (e.g. `persons:demo`)
  // under every window (each widened by `margin`): zero when taken, else how
  // long until the next turn may be free (nothing taken). UNAVAILABLE (or
  // any error) when the shared budget cannot be decided now: the caller paces
  // alone. Never blocks longer than a short deadline.
  virtual absl::StatusOr<absl::Duration> TakeTurn(const std::string& budget,
                                                  const std::vector<RateWindow>& windows,
                                                  absl::Duration margin) = 0;

  // HoldBack holds every replica's requests of `budget` back for `delay`
  // (PostHog answered 429 and named it). Best effort.
  virtual void HoldBack(const std::string& budget, absl::Duration delay) = 0;

  // Seed writes requests this replica sent while it paced alone (`times`,
  // its own clock) into `budget`, so that the shared budget counts them
  // when it is back (Redis restarted empty, or was cut off). Best effort.
  virtual void Seed(const std::string& budget, const std::vector<absl::Time>& times,
                    absl::Duration keep) = 0;

  // Replicas is the last known number of replicas sharing the budget (at
  // least 1): alone, a replica paces with 1/Replicas() of each window.
  virtual int Replicas() const = 0;
};

}  // namespace posthog_gateway

#endif  // SERVER_PAGING_SHARED_BUDGET_H_
