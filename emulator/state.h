#ifndef EMULATOR_STATE_H_
#define EMULATOR_STATE_H_

// EmulatorState: everything the emulator knows, owned in one place and
// shared by the handlers: the Directory (projects, users, keys), events,
// persons, flags and cohorts, the rate limiter, the fault injector and the
// request log. Seeds are loaded here (format in emulator/README.md).
//
// Thread-safe: each member store locks itself; the Directory pointer is
// swapped under a mutex and handlers keep their own shared_ptr copy for
// the whole request.

#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "emulator/directory.h"
#include "emulator/event_store.h"
#include "emulator/faults.h"
#include "emulator/flag_store.h"
#include "emulator/person_store.h"
#include "emulator/rate_limiter.h"
#include "emulator/request_log.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

class EmulatorState final {
 public:
  // `clock` is used by the rate limiter; not owned, must outlive this.
  explicit EmulatorState(Clock* clock = SystemClock());
  EmulatorState(const EmulatorState&) = delete;
  EmulatorState& operator=(const EmulatorState&) = delete;

  // LoadSeed replaces all data with `seed` and remembers it for Reset().
  absl::Status LoadSeed(const nlohmann::json& seed);

  // AddSeed merges `seed` into the current data: new projects, users and
  // keys; persons, cohorts and flags appended to their projects; and the
  // shortcut {"generate_persons": N, "project_id": id (default: first)}.
  absl::Status AddSeed(const nlohmann::json& seed);

  // Reset clears events, persons, flags and the request log and reloads the
  // seed given to LoadSeed (faults are kept).
  absl::Status Reset();

  // ForceRateLimits overrides the seed's "rate_limits.enabled" (the
  // --rate_limits flag); nullopt follows the seed.
  void ForceRateLimits(std::optional<bool> enabled);

  std::shared_ptr<const Directory> directory() const;
  EventStore& events() { return events_; }
  PersonStore& persons() { return persons_; }
  FlagStore& flags() { return flags_; }
  RateLimiter& rate_limiter() { return rate_limiter_; }
  FaultInjector& faults() { return faults_; }
  RequestLog& requests() { return requests_; }

 private:
  absl::Status ApplyProjectData(const Directory& directory, const nlohmann::json& seed);
  void ApplyRateLimits(const nlohmann::json& seed);

  mutable absl::Mutex mu_;
  std::shared_ptr<const Directory> directory_ ABSL_GUARDED_BY(mu_);
  nlohmann::json seed_ ABSL_GUARDED_BY(mu_);
  std::optional<bool> forced_rate_limits_ ABSL_GUARDED_BY(mu_);

  EventStore events_;
  PersonStore persons_;
  FlagStore flags_;
  RateLimiter rate_limiter_;
  FaultInjector faults_;
  RequestLog requests_;
};

}  // namespace posthog_emulator

#endif  // EMULATOR_STATE_H_
