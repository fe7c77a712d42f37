#ifndef EMULATOR_FLAG_MATCHER_H_
#define EMULATOR_FLAG_MATCHER_H_

// Server-side feature flag evaluation, following PostHog's Rust flags
// service (docs/posthog-api.md §3): the SHA-1 bucketing hash (§3.1), variant
// selection (§3.2), property operators (§3.4, with the server's answers:
// a property the person lacks is a non-match, except for `is_not_set`),
// cohorts (§3.5), feature enrollment and holdouts before the release
// conditions (§3.6), and flag dependencies (§3.7).
//
// A FlagMatcher is immutable after construction and thread-safe; it copies
// what it needs from the project's flags and cohorts.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// Hash returns int(sha1(prefix + identifier + salt)[:15 hex], 16) /
// 0xFFFFFFFFFFFFFFF, in [0, 1]. Flag rollout: prefix "<key>.", salt "";
// variant: salt "variant"; holdout: prefix "holdout-".
double Hash(absl::string_view prefix, absl::string_view identifier, absl::string_view salt);

// MatchProperty tests one property filter (`{"key", "value", "operator"}`)
// against `properties` (a JSON object) with the server's semantics.
bool MatchProperty(const nlohmann::json& filter, const nlohmann::json& properties);

// CohortDefinition is a cohort as the evaluator needs it: a dynamic
// cohort's property group, or a static cohort's members.
struct CohortDefinition {
  int64_t id = 0;
  bool is_static = false;
  nlohmann::json properties;                      // {"type": "OR"|"AND", "values": [...]}
  absl::flat_hash_set<std::string> distinct_ids;  // static members
};

// FlagEvaluationInput is everything known about the subject of a
// /flags request.
struct FlagEvaluationInput {
  std::string distinct_id;
  std::string device_id;  // empty when not sent
  // All distinct_ids of the stored person (static cohort membership).
  std::vector<std::string> person_distinct_ids;
  nlohmann::json person_properties = nlohmann::json::object();
  nlohmann::json groups = nlohmann::json::object();            // type -> key
  nlohmann::json group_properties = nlohmann::json::object();  // type -> {}
};

// FlagResult is one flag's answer, in the terms of the /flags v2 response.
struct FlagResult {
  std::string key;
  bool enabled = false;
  std::optional<std::string> variant;
  std::string reason_code;  // condition_match, out_of_rollout_bound, ...
  std::optional<int> condition_index;
  std::string reason_description;
  nlohmann::json payload;  // null when none
  int64_t id = 0;
  int64_t version = 0;
  std::string description;  // the flag's name
  bool has_experiment = false;

  // Value is the legacy v1 value: the variant, else `enabled`.
  nlohmann::json Value() const;
};

class FlagMatcher final {
 public:
  // `flags` are the project's flags (CRUD JSON shape; deleted ones are
  // ignored). `group_type_mapping` maps "0" -> "company". Flag-type
  // properties may name their dependency by id or by key.
  FlagMatcher(std::vector<nlohmann::json> flags, nlohmann::json group_type_mapping,
              absl::flat_hash_map<int64_t, CohortDefinition> cohorts);

  FlagMatcher(const FlagMatcher&) = delete;
  FlagMatcher& operator=(const FlagMatcher&) = delete;

  // EvaluateAll evaluates every active-or-inactive, non-deleted flag (or
  // only `only_keys` and their dependencies when non-empty), in flag order.
  std::vector<FlagResult> EvaluateAll(const FlagEvaluationInput& input,
                                      const std::vector<std::string>& only_keys = {}) const;

  // Evaluate evaluates the flag with `key`; nullopt when it does not exist.
  std::optional<FlagResult> Evaluate(absl::string_view key, const FlagEvaluationInput& input) const;

  // MatchCohort is true when a person with `properties` and `distinct_ids`
  // belongs to cohort `id` (false for unknown cohorts).
  bool MatchCohort(int64_t id, const nlohmann::json& properties,
                   const std::vector<std::string>& distinct_ids) const;

 private:
  struct Evaluation;  // per-call dependency cache

  FlagResult EvaluateFlag(const nlohmann::json& flag, Evaluation& ev) const;
  bool MatchFilter(const nlohmann::json& filter, const nlohmann::json& properties, Evaluation& ev,
                   int depth) const;
  bool MatchGroup(const nlohmann::json& group, const nlohmann::json& properties, Evaluation& ev,
                  int depth) const;
  const nlohmann::json* FindFlag(const nlohmann::json& id_or_key) const;

  std::vector<nlohmann::json> flags_;
  absl::flat_hash_map<std::string, size_t> by_key_;
  absl::flat_hash_map<int64_t, size_t> by_id_;
  nlohmann::json group_type_mapping_;
  absl::flat_hash_map<int64_t, CohortDefinition> cohorts_;
};

}  // namespace posthog_emulator

#endif  // EMULATOR_FLAG_MATCHER_H_
