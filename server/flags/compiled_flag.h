#ifndef SERVER_FLAGS_COMPILED_FLAG_H_
#define SERVER_FLAGS_COMPILED_FLAG_H_

// The compiled forms of a `/flags/definitions` body, private to the
// evaluator: compile.cc fills them once per body, evaluator.cc reads them
// per call. Everything a filter needs at evaluation time is precomputed
// here (regular expressions, case-folded values, numbers, dates, semver
// bounds, the SHA-1 state of each `key.` prefix). Immutable once compiled.

#include <openssl/sha.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"
#include "server/flags/evaluator.h"
#include "server/flags/values.h"

namespace posthog_gateway::flags {

struct PropertyGroup;

struct CompiledProperty {
  enum class Kind { kPlain, kCohort, kFlag };
  Kind kind = Kind::kPlain;
  std::string key;
  // Plain properties: the key's number among the definitions' distinct
  // plain-property keys, where an EvaluationCache keeps the person's value
  // for it (and the value parsed as a date or a version) for one call.
  int key_slot = -1;
  // Plain properties: the number of this filter (key, operator, value)
  // among the definitions' distinct plain filters: flags often repeat a
  // filter, and an EvaluationCache keeps its decided outcome for the person
  // for one call.
  int filter_slot = -1;
  Op op = Op::kExact;
  std::string op_name;
  bool negation = false;
  nlohmann::json value;

  // Plain properties.
  std::string value_str;
  std::string folded;
  bool is_list = false;
  std::vector<std::string> folded_list;
  std::unique_ptr<RE2> regex;
  // The pattern is invalid in every engine: regex and not_regex are false.
  bool regex_invalid = false;
  // exact / is_not on a value with non-ASCII letters: a case-insensitive
  // literal matcher (Unicode case folding, as the server's to_lowercase), for
  // the value or each list item (nullptr for an ASCII one).
  std::unique_ptr<RE2> unicode_exact;
  std::vector<std::unique_ptr<RE2>> unicode_list;
  // exact / is_not compare as booleans (IsTruthyOrFalsy of the value).
  bool boolean_compare = false;
  bool value_truthy = false;
  bool has_number = false;
  double number = 0;
  // Dates: relative (`-30d`) or absolute; a 4-digit year needs "now".
  bool date_ok = false;
  bool date_relative = false;
  int64_t relative_count = 0;
  char relative_unit = 'd';
  bool date_year_only = false;
  int64_t date_year = 0;
  absl::Time date_absolute;
  // Semver: the value, or the [low, high) range of tilde/caret/wildcard.
  bool semver_ok = false;
  Semver semver;
  Semver semver_high;

  // Cohorts.
  std::string cohort_id;

  // Flag dependencies.
  bool chain_present = false;
  std::vector<std::string> chain;
};

struct PropertyGroup {
  bool is_and = true;
  bool malformed = false;
  std::vector<PropertyGroup> groups;
  std::vector<CompiledProperty> properties;
};

struct CompiledCohort {
  PropertyGroup root;
};

struct CompiledCondition {
  std::vector<CompiledProperty> properties;
  bool has_rollout = false;
  double rollout = 100;
  // Only set when it names one of the flag's variants.
  std::string variant_override;
  int aggregation_group_type_index = -1;
};

struct CompiledVariant {
  std::string key;
  double value_min = 0;
  double value_max = 0;
};

// A flag's payload for one value, parsed, and as the google.protobuf.Value
// an EvaluateFlags reply carries (server/posthog/value_wire.h): encoded once
// per definitions instead of once per result.
struct CompiledPayload {
  nlohmann::json value;
  std::string value_bytes;
};

// One value an enabled flag can take (`true` or a variant): its payload, or
// null, and the reply's enabled, variant and payload fields for it
// (flag_result_wire::EnabledFields), encoded once per definitions.
struct CompiledValue {
  const CompiledPayload* payload = nullptr;
  std::string fields;
};

struct CompiledFlag {
  std::string key;
  int64_t id = 0;
  int64_t version = 0;
  bool active = true;
  bool ensure_experience_continuity = false;
  bool has_experiment = false;
  bool bucket_by_device = false;
  int aggregation_group_type_index = -1;
  bool early_exit = false;
  std::vector<CompiledCondition> conditions;
  std::vector<CompiledVariant> variants;
  bool feature_enrollment = false;
  std::string enrollment_property;
  bool has_holdout = false;
  double holdout_percentage = 0;
  std::string holdout_variant;
  // Payloads by value: "true", "false" or a variant key.
  absl::flat_hash_map<std::string, CompiledPayload> payloads;
  // The values an enabled result can take: `true` (a flag without variants)
  // first, then each of `variants` in order; filled after `payloads`, whose
  // entries they point to.
  std::vector<CompiledValue> values;
  // KeyField and LocalTail of every result of this flag.
  EncodedFlag encoded;
  // SHA-1 state after `key.`.
  SHA_CTX prefix;
  // Its place in CompiledDefinitions::flags(), where an EvaluationCache
  // keeps its bucketing hashes for the person.
  int index = -1;
  // Whether an evaluation for a person bucketed by distinct id will likely
  // hash the id with `key.` for a rollout below 100 % (salt ``) and for a
  // variant (salt `variant`): an EvaluationCache computes such flags' hashes
  // a few at once. A guess that only decides what is computed early.
  bool likely_rollout_hash = false;
  bool likely_variant_hash = false;
  // Their places in CompiledDefinitions::hash_jobs_, or -1.
  int rollout_hash_job = -1;
  int variant_hash_job = -1;
  // A part of the definition could not be compiled: evaluation is
  // inconclusive with this reason.
  std::string malformed;
};

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_COMPILED_FLAG_H_
