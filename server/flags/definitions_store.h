#ifndef SERVER_FLAGS_DEFINITIONS_STORE_H_
#define SERVER_FLAGS_DEFINITIONS_STORE_H_

// DefinitionsStore keeps one project's flag definitions in memory, fetched
// from PostHog's `GET /flags/definitions?token=<phc>&send_cohorts` and
// refreshed by polling with `If-None-Match` (docs/posthog-api.md
// §2.2):
// - the feature-flags secure key (`phs_`) is used when configured, on the
//   ingestion host; otherwise the personal key, on the app host (the only
//   host it may go to);
// - 200 compiles and publishes new definitions; 304 keeps them;
// - 401, 403 and 429 back off exponentially (min(max_backoff,
//   interval * 2^n)) and keep serving the last definitions, marked stale;
// - 402 (quota) clears them;
// - no answer or 5xx keeps the last definitions, marked stale.
//
// Readers call Current(), which is lock-free: the snapshot is an immutable
// `std::shared_ptr<const DefinitionsSnapshot>` swapped atomically, so
// evaluation never contends with polling. Watchers wait on WaitForChange.
//
// In a fleet (UseFleet), one replica polls for all: each round the store
// takes or renews its lease (SharedDefinitions); the holder polls PostHog as
// above and stores each new body and ETag for the others, who load them
// (woken by the change, or at their next round). When the holder dies its
// lease expires and the next replica to ask takes it over. When the fleet
// cannot be reached the store polls PostHog on its own.
//
// Time is injectable: PollOnce() performs one round and returns the delay
// before the next, so tests drive polling without sleeping; Start() runs it
// on a thread with a real wait. Thread-safe. Borrows the PostHogClient.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/config/config.h"
#include "server/flags/evaluator.h"
#include "server/flags/shared_definitions.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway::flags {

// One published state of a project's definitions.
struct DefinitionsSnapshot {
  // Null until the first load, and after a 402.
  std::shared_ptr<const CompiledDefinitions> definitions;
  // PostHog's ETag of `definitions`.
  std::string etag;
  // When PostHog last confirmed the definitions (200 or 304).
  absl::Time fetch_time = absl::InfinitePast();
  // The last refresh failed: the definitions may be out of date.
  bool stale = false;
  // PostHog answered 402: flags are not evaluated until the quota returns.
  bool quota_limited = false;
  // Changes whenever `definitions`, `stale` or `quota_limited` change.
  uint64_t generation = 0;
};

class DefinitionsStore final {
 public:
  // Borrows `client` and `clock`, which must outlive it.
  DefinitionsStore(const PostHogClient* client, FlagsConfig options, Clock* clock = RealClock());
  ~DefinitionsStore();

  DefinitionsStore(const DefinitionsStore&) = delete;
  DefinitionsStore& operator=(const DefinitionsStore&) = delete;

  // Current returns the latest snapshot (never null). Lock-free.
  std::shared_ptr<const DefinitionsSnapshot> Current() const;

  // Loaded says whether definitions were loaded at least once.
  bool Loaded() const { return loaded_.load(std::memory_order_acquire); }

  // UseFleet shares polling with the fleet's other replicas through
  // `shared` (borrowed), whose leases last `lease`. Call before Start.
  void UseFleet(SharedDefinitions* shared, absl::Duration lease);

  // PollOnce runs one round (fetches, or loads what the fleet's poller
  // stored) and publishes the outcome; returns how long to wait before the
  // next round.
  absl::Duration PollOnce();

  // Polling says whether this replica polls PostHog itself (it holds the
  // fleet's lease, or it is alone); for metrics.
  bool Polling() const { return polling_.load(std::memory_order_relaxed); }

  // WaitForChange blocks until the generation differs from `generation`,
  // `timeout` passes, or Stop(); returns the current snapshot.
  std::shared_ptr<const DefinitionsSnapshot> WaitForChange(uint64_t generation,
                                                           absl::Duration timeout) const;

  // Start polls on a background thread (first poll at once) until Stop.
  void Start();
  // Stop ends polling and wakes every watcher. Idempotent.
  void Stop();
  bool stopped() const { return stopping_.HasBeenNotified(); }

 private:
  // One request to PostHog; the holder of the fleet's lease (`holder`)
  // stores what it learns for the others.
  absl::Duration PollPostHog(bool holder);
  // Loads the definitions the fleet's poller stored, if they changed.
  void FollowFleet();
  // Wakes the polling thread for a round now (a change in the fleet).
  void Wake();
  void Publish(std::shared_ptr<DefinitionsSnapshot> next);
  // A copy of the current snapshot, to modify and publish.
  std::shared_ptr<DefinitionsSnapshot> Next() const;

  const PostHogClient* client_;
  const FlagsConfig options_;
  Clock* const clock_;
  std::shared_ptr<const DefinitionsSnapshot> current_;  // atomic_load/store only.
  std::atomic<bool> loaded_{false};
  std::atomic<bool> polling_{true};
  // Only the polling thread touches these.
  int refusals_ = 0;
  SharedDefinitions* shared_ = nullptr;
  absl::Duration lease_;
  absl::Time next_posthog_poll_ = absl::InfinitePast();
  int64_t followed_version_ = 0;
  bool fleet_store_failed_ = false;

  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;

  mutable absl::Mutex mu_;  // For watchers only.
  uint64_t published_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification stopping_;
  std::thread poller_;
};

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_DEFINITIONS_STORE_H_
