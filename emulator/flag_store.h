#ifndef EMULATOR_FLAG_STORE_H_
#define EMULATOR_FLAG_STORE_H_

// FlagStore: feature flags and cohorts per project, with PostHog's CRUD
// rules (docs/posthog-api.md §2.3): key regex and per-project uniqueness among
// live flags, variant percentages summing to 100, a `version` that starts at
// 1 and grows on every change, optimistic concurrency (a stale `version` in
// an update is a 409), and soft deletion (`deleted: true`; there is no hard
// delete).
//
// Flags are held in their stored form; Serialize() renders the
// FeatureFlagSerializer shape. Thread-safe (one absl::Mutex).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "emulator/flag_matcher.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// FlagAuthor is who creates or edits a flag (the key's user).
struct FlagAuthor {
  int64_t id = 0;
  std::string uuid;
  std::string distinct_id;
  std::string first_name;
  std::string last_name;
  std::string email;
};

class FlagStore final {
 public:
  FlagStore() = default;
  FlagStore(const FlagStore&) = delete;
  FlagStore& operator=(const FlagStore&) = delete;

  // Create validates `body` and stores a new flag; returns it serialized.
  // 400 bodies as PostHog: required/invalid_key/unique on "key",
  // invalid_input on "filters".
  absl::StatusOr<nlohmann::json> Create(int64_t team_id, const nlohmann::json& body,
                                        const FlagAuthor& author);

  // Update applies `body` to flag `id` (PATCH when `partial`, else PUT);
  // NotFound when absent, Aborted (409) on a stale `version`.
  absl::StatusOr<nlohmann::json> Update(int64_t team_id, int64_t id, const nlohmann::json& body,
                                        bool partial, const FlagAuthor& author);

  // Get returns flag `id` serialized (deleted flags included).
  std::optional<nlohmann::json> Get(int64_t team_id, int64_t id) const;

  // List returns live flags from `offset` (at most `limit`) in PostHog's
  // list order, newest first (`-created_at`; flags created at the same time,
  // as seeded ones are, newest id first), and the number of live flags.
  std::pair<std::vector<nlohmann::json>, size_t> List(int64_t team_id, size_t offset,
                                                      size_t limit) const;

  // Stored returns every flag of the project in stored form (for the
  // evaluator and the definitions endpoint).
  std::vector<nlohmann::json> Stored(int64_t team_id) const;

  // AddSeedFlag stores a flag from the seed as given (id kept when set).
  absl::Status AddSeedFlag(int64_t team_id, const nlohmann::json& flag);

  // GenerateFlags adds `n` boolean flags "generated-flag-<k>" (k counting
  // across calls) rolled out to k % 101 percent, created now.
  void GenerateFlags(int64_t team_id, size_t n);

  // Cohorts. A seed cohort is {"id", "name", "is_static", "filters":
  // {"properties": <group>}} or {"id", "is_static": true, "distinct_ids"}.
  absl::Status AddCohort(int64_t team_id, const nlohmann::json& cohort);
  absl::flat_hash_map<int64_t, CohortDefinition> Cohorts(int64_t team_id) const;

  void Clear();

  // Serialize renders a stored flag the way FeatureFlagSerializer does.
  static nlohmann::json Serialize(const nlohmann::json& stored);

 private:
  absl::Status Validate(int64_t team_id, const nlohmann::json& flag, int64_t self_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Store keeps a new flag and its creation time (for List's order).
  void Store(int64_t team_id, int64_t id, nlohmann::json stored) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<int64_t, std::map<int64_t, nlohmann::json>> flags_ ABSL_GUARDED_BY(mu_);
  // `created_at` of each flag, parsed once: List sorts on it every call.
  std::map<int64_t, std::map<int64_t, absl::Time>> created_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::map<int64_t, CohortDefinition>> cohorts_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t generated_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace posthog_emulator

#endif  // EMULATOR_FLAG_STORE_H_
