#ifndef SERVER_FLEET_FLEET_COORDINATOR_H_
#define SERVER_FLEET_FLEET_COORDINATOR_H_

// FleetCoordinator makes N replicas act toward PostHog as one gateway,
// through Redis (docs/fleet.md):
// - SharedBudget: one rate budget per project and kind of request, every
//   window decided atomically by a Lua script over a sliding log of request
//   times (a sorted set; the times are Redis' own clock, so replicas' clocks
//   do not matter), like PostHog's own throttle; a 429 seen by one replica
//   holds every replica back for the time PostHog named;
// - SharedDefinitions: a lease per project (set-if-absent with expiry,
//   renewed by its holder) picks the replica that polls flag definitions;
//   it stores the body and ETag in a hash and publishes the change on a
//   channel the others subscribe to;
// - a heartbeat every second counts the live replicas, so that a replica
//   cut off from Redis paces with its share of the budget.
//
// Redis trouble never fails a call: every command has the short deadline of
// RedisClient, and an unreachable Redis answers UNAVAILABLE at once (the
// callers then act alone). The transitions are logged once each; Shared()
// and the counters are for metrics and health.
//
// Keys: `<prefix>:replicas`, `<prefix>:<budget>:log|pause`,
// `<prefix>:<alias>:defs` (hash: version, etag, body, fetched_at),
// `<prefix>:<alias>:defs:lease`; channel `<prefix>:<alias>:defs`.
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/flags/shared_definitions.h"
#include "server/fleet/redis_client.h"
#include "server/paging/shared_budget.h"

namespace posthog_gateway {

struct FleetOptions {
  RedisOptions redis;
  std::string key_prefix = "posthog-gateway";
  // A definitions poller's lease.
  absl::Duration lease = absl::Seconds(10);
  // How often the replica says it is alive; a replica silent for three
  // beats is no longer counted.
  absl::Duration heartbeat = absl::Seconds(1);
  // Names this replica in Redis (leases, the replica count); unique.
  std::string replica_id;
};

class FleetCoordinator final : public SharedBudget, public flags::SharedDefinitions {
 public:
  // Starts the heartbeat and the subscription; neither needs Redis to be up.
  explicit FleetCoordinator(FleetOptions options);
  // Stops both, gives up this replica's leases and leaves the replica count.
  ~FleetCoordinator() override;

  FleetCoordinator(const FleetCoordinator&) = delete;
  FleetCoordinator& operator=(const FleetCoordinator&) = delete;

  // SharedBudget.
  absl::StatusOr<absl::Duration> TakeTurn(const std::string& budget,
                                          const std::vector<RateWindow>& windows,
                                          absl::Duration margin) override;
  void HoldBack(const std::string& budget, absl::Duration delay) override;
  void Seed(const std::string& budget, const std::vector<absl::Time>& times,
            absl::Duration keep) override;
  int Replicas() const override { return replicas_.load(std::memory_order_relaxed); }

  // SharedDefinitions.
  absl::StatusOr<bool> HoldLease(const std::string& project) override;
  absl::Status Store(const std::string& project, const std::string& etag,
                     const std::string& body) override;
  absl::Status Confirm(const std::string& project) override;
  absl::StatusOr<flags::SharedState> Peek(const std::string& project) override;
  absl::StatusOr<std::optional<flags::SharedCopy>> Load(const std::string& project) override;
  void OnChange(const std::string& project, std::function<void()> changed) override;

  // Shared says whether the last command reached Redis (shared mode).
  bool Shared() const { return shared_.load(std::memory_order_relaxed) == 1; }
  // Commands that failed (Redis unreachable or erring).
  int64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  // Sends a command and follows the shared/alone state (logged once a change).
  absl::StatusOr<RedisReply> Run(const std::vector<std::string>& argv);
  std::string Key(const std::string& name) const;
  void Heartbeat();
  void Notify(const std::string& channel);

  const FleetOptions options_;
  RedisClient client_;
  // -1 unknown (no command yet), 0 alone, 1 shared.
  std::atomic<int> shared_{-1};
  std::atomic<int> replicas_{1};
  std::atomic<int64_t> errors_{0};
  std::atomic<uint64_t> turns_{0};

  absl::Mutex mu_;
  std::map<std::string, std::function<void()>> on_change_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> leases_ ABSL_GUARDED_BY(mu_);

  absl::Notification stopping_;
  std::thread heartbeat_;
  std::unique_ptr<RedisSubscriber> subscriber_;
};

}  // namespace posthog_gateway

#endif  // SERVER_FLEET_FLEET_COORDINATOR_H_
