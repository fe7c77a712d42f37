#ifndef SERVER_FLAGS_EVALUATOR_H_
#define SERVER_FLAGS_EVALUATOR_H_

// The gateway's own local evaluator of PostHog feature flags
// (docs/posthog-api.md §3). Pure: no I/O, no clock (the caller
// passes "now"), no locks.
//
// CompileDefinitions parses PostHog's `/flags/definitions` body once into a
// CompiledDefinitions (regular expressions compiled with RE2, dates, numbers,
// semver bounds and case-folded values precomputed, SHA-1 state of each
// `key.` prefix kept), which is immutable and shared between threads.
// EvaluateFlag then decides one flag for one context without parsing JSON.
//
// A result is either decided (a value, a reason, a payload) or inconclusive:
// the definitions cannot decide it (experience continuity, a static or
// missing cohort, an unknown operator, a property the caller did not give, a
// missing dependency, ...). Inconclusive results name why; the caller then
// asks PostHog (`POST /flags?v=2`).
//
// Values match as PostHog's flags service matches them: a non-string value
// as its JSON (`true`, `null`, `1.0`); `exact`/`is_not` as booleans when the
// filter value is true/false (or a list of them), else with Unicode case
// folding; null matches the string operators as `null` and fails the others;
// a regular expression no engine accepts is false for regex and not_regex;
// `negation` counts only inside cohorts.
// posthog-node 5.70 agrees (tests/polyglot/flags_conformance.test.js).
//
// Deliberate choices where posthog-node or posthog-python differ (docs/flags.md
// "Deliberate differences from posthog-node", each in the conformance test's
// allow-list):
// - gt/gte/lt/lte compare numerically when both sides are entirely numbers,
//   otherwise as strings.
// - is_not_set is decided on the caller's properties: absent → match,
//   present → no match (posthog-node 5.70 and posthog-python: undecided).
// - exact/is_not on integral numbers is decided (posthog-node cannot tell 30
//   from 30.0 and asks PostHog).
// - Feature enrollment and holdouts (also legacy holdout_groups) are
//   evaluated locally by the server's order (disabled → group → enrollment →
//   holdout → conditions).
// - A regular expression RE2 cannot run (look-around, backreferences) is
//   inconclusive, not false, so PostHog decides it; RE2 syntax such as (?i)
//   is decided locally.
// - A definite non-match of one property makes its condition a non-match even
//   if another property of the condition is inconclusive or needs PostHog (a
//   static cohort).
// - A group given with an empty key counts as absent (the server's
//   no_group_type).
// - Case folding is ASCII lower-casing except for exact/is_not.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/flags/values.h"

namespace posthog_gateway::flags {

// Hash is PostHog's bucketing hash: the top 60 bits of
// SHA-1(prefix + identifier + salt) divided by 2^60-1, in [0, 1]. Flag
// rollout: prefix `key.`, salt ``; variant: salt `variant`; holdout: prefix
// `holdout-`.
double Hash(absl::string_view prefix, absl::string_view identifier, absl::string_view salt);

// ReasonCode mirrors PostHog's `reason.code`.
enum class ReasonCode {
  kConditionMatch,
  kNoConditionMatch,
  kOutOfRolloutBound,
  kNoGroupType,
  kSuperConditionValue,
  kHoldoutConditionValue,
  kFlagDisabled,
};

// ReasonCodeName is PostHog's string for `code` (`condition_match`, ...).
const char* ReasonCodeName(ReasonCode code);

struct FlagEvaluation;

// ReasonDescription is PostHog's `reason.description` for a decided result,
// e.g. `Matched condition set 1` (computed on demand: evaluation itself does
// not format strings). The text is a constant, or formatted into `buffer`
// (a condition set past the 64th).
absl::string_view ReasonDescription(const FlagEvaluation& evaluation, std::string* buffer);

// PropertyLookup gives a person's properties one key at a time, for a
// caller that holds them in another form than JSON: EvaluateFlags has the
// request's google.protobuf.Struct, and converting only the properties the
// definitions read, when they read them, costs less than building the whole
// object per call (building it was 6 % of the handler in a perf profile of
// 50 flags, issue 18).
//
// A string property is given as a view of the caller's own text (no copy
// per call: converting each to an nlohmann::json was the largest source of
// a 50-flag call's mallocs, issue 18); other values may be converted into
// `storage`.
class PropertyLookup {
 public:
  // Find sets `*value` to the property `key` and returns true, or returns
  // false when the person has no such property. `*value` must match as the
  // JSON object the properties stand for would: a string as that JSON
  // string, anything else as JSON (which Find may write into `*storage` and
  // refer to). What `*value` refers to must live as long as `*storage`, the
  // lookup and the properties it reads.
  virtual bool Find(const std::string& key, PropertyValue* value,
                    nlohmann::json* storage) const = 0;

 protected:
  ~PropertyLookup() = default;
};

// Who a flag is evaluated for. Property objects are JSON objects (or null).
struct EvaluationContext {
  std::string distinct_id;
  // Empty when unknown.
  std::string device_id;
  // The person's properties: a JSON object, or null for none (the default:
  // an empty object would be an allocation per context). When
  // `person_lookup` is set the evaluator reads them through it instead (and
  // `person_properties` need not hold them).
  nlohmann::json person_properties;
  const PropertyLookup* person_lookup = nullptr;
  // Group type → group key.
  std::map<std::string, std::string> groups;
  // Group type → that group's properties.
  std::map<std::string, nlohmann::json> group_properties;
  // Whether PostHog may compute GeoIP person properties in a remote
  // evaluation (`geoip_disable` in `/flags`); unset: the project's default
  // (ProjectConfig::disable_geoip). Local evaluation ignores it.
  std::optional<bool> disable_geoip;
};

// A flag's result fields that are the same for every person, as wire bytes
// (server/posthog/flag_result_wire.h): KeyField and LocalTail.
struct EncodedFlag {
  std::string key_field;
  std::string tail;
};

// The outcome of one flag.
struct FlagEvaluation {
  // False: the definitions cannot decide; see `inconclusive_reason`.
  bool decided = false;
  std::string inconclusive_reason;

  bool enabled = false;
  // Empty for a boolean value. Borrowed from the CompiledDefinitions.
  absl::string_view variant;
  ReasonCode reason = ReasonCode::kNoConditionMatch;
  // The condition set that decided, or -1.
  int condition_index = -1;
  // The parsed payload for the value; null when there is none. Borrowed from
  // the CompiledDefinitions, which must outlive it.
  const nlohmann::json* payload = nullptr;
  // The same payload as a google.protobuf.Value's wire bytes
  // (server/posthog/value_wire.h), encoded when the definitions were
  // compiled, borrowed likewise; empty when there is no payload (or only
  // `payload` was filled in: the reply then encodes it).
  absl::string_view payload_bytes;
  int64_t flag_id = 0;
  int64_t flag_version = 0;
  // The EvaluateFlags reply's bytes of this result that do not depend on
  // the person (server/posthog/flag_result_wire.h), encoded when the
  // definitions were compiled and borrowed likewise: the flag's key field
  // and source/id/version (`encoded`), and the enabled, variant and payload
  // fields of this value (`encoded_value`, empty for a disabled result).
  // Null when the definitions have no such bytes for the result (a variant
  // the flag does not list): the reply then encodes those fields itself.
  const EncodedFlag* encoded = nullptr;
  const std::string* encoded_value = nullptr;
};

struct CompiledFlag;
struct CompiledCohort;
class CompiledDefinitions;

// EvaluationCache holds what the evaluations of many flags for one context
// share: the person's value for each property key the definitions filter on,
// looked up once, and that value parsed as a date or a version once, instead
// of once per condition (50 flags read the same few properties; the lookups
// and parses were a sixth of a 50-flag call's handler in a perf profile,
// issue 18); and the decided outcome of each distinct filter on the
// person's properties, which flags often repeat (a regular expression on
// the email, a plan). It is filled as flags are evaluated.
//
// It also keeps the person's bucketing hash of each flag (rollout and
// variant), computed for a few flags at once: the SHA-1 blocks of several
// flags overlap on the CPU.
//
// One cache serves one (definitions, context, now): EvaluateFlag clears it
// when given another. The context must not change while it is in use. Not
// thread-safe: one per call, or one per thread reused with Forget.
class EvaluationCache final {
 public:
  EvaluationCache() = default;
  EvaluationCache(const EvaluationCache&) = delete;
  EvaluationCache& operator=(const EvaluationCache&) = delete;

  // Forget makes the next EvaluateFlag start afresh, as with a new cache,
  // but in the memory this one has already allocated (a new cache per call
  // cost four allocations). A cache reused for another call must be
  // forgotten first: that call's context may have the address the last
  // one's had, and the same `now`.
  void Forget() { definitions_ = nullptr; }

 private:
  friend class Evaluator;

  // One property key of the person's.
  struct Entry {
    enum Parse : uint8_t { kNotYet, kParsed, kInvalid };
    bool looked_up = false;
    Parse date = kNotYet;
    Parse version = kNotYet;
    // Whether the person has the property, and its value.
    bool found = false;
    PropertyValue value;
    // What `value` refers to when a PropertyLookup converted it.
    nlohmann::json storage;
    absl::Time date_value;
    int64_t version_value[3] = {0, 0, 0};
  };

  const CompiledDefinitions* definitions_ = nullptr;
  const EvaluationContext* context_ = nullptr;
  absl::Time now_;
  std::vector<Entry> entries_;
  // By CompiledProperty::filter_slot: kUnknown, or the filter's decided
  // outcome on the person's properties (before `negation`).
  enum Outcome : uint8_t { kUnknown, kFalse, kTrue };
  std::vector<Outcome> outcomes_;
  // By CompiledFlag::index: Hash(`key.`, distinct_id, ``) and
  // Hash(`key.`, distinct_id, `variant`), or negative until computed.
  // Computed a few flags at once (sha1_lanes.h) when the CPU can.
  std::vector<double> rollout_hashes_;
  std::vector<double> variant_hashes_;
};

// CompiledDefinitions is one `/flags/definitions` body, compiled. Immutable
// and thread-safe once built.
class CompiledDefinitions final {
 public:
  CompiledDefinitions();
  ~CompiledDefinitions();
  CompiledDefinitions(const CompiledDefinitions&) = delete;
  CompiledDefinitions& operator=(const CompiledDefinitions&) = delete;

  // Find returns the flag with `key`, or nullptr.
  const CompiledFlag* Find(absl::string_view key) const;
  // The flags in PostHog's order.
  const std::vector<std::unique_ptr<CompiledFlag>>& flags() const { return flags_; }
  // FlagKey is the key of `flag`.
  static const std::string& FlagKey(const CompiledFlag& flag);
  // The body it was compiled from.
  const nlohmann::json& raw() const { return raw_; }
  // Whether PostHog asked for minimal `$feature_flag_called` events.
  bool minimal_flag_called_events() const { return minimal_flag_called_events_; }
  // Whether `flag` has an experiment (`has_experiment`).
  static bool HasExperiment(const CompiledFlag& flag);

 private:
  friend absl::StatusOr<std::shared_ptr<const CompiledDefinitions>> CompileDefinitions(
      nlohmann::json body);
  friend class Evaluator;

  nlohmann::json raw_;
  std::vector<std::unique_ptr<CompiledFlag>> flags_;
  absl::flat_hash_map<std::string, const CompiledFlag*> by_key_;
  absl::flat_hash_map<std::string, std::unique_ptr<CompiledCohort>> cohorts_;
  std::map<int, std::string> group_types_;
  // How many distinct keys plain properties filter on (CompiledProperty::key_slot).
  int property_keys_ = 0;
  // How many distinct plain filters there are (CompiledProperty::filter_slot).
  int plain_filters_ = 0;
  // The bucketing hashes of the person an evaluation of every flag will
  // likely compute (CompiledFlag::likely_rollout_hash, likely_variant_hash),
  // in the flags' order: an EvaluationCache computes a few consecutive ones
  // at once.
  // Each holds what its block needs of the flag's `key.` prefix, so that
  // filling the blocks reads this list and not the flags (reading each
  // flag's SHA-1 state was most of the cost of filling them in a perf
  // profile of 50 flags: a cache miss per flag).
  struct HashJob {
    int flag = 0;
    bool variant = false;
    // The SHA-1 state after the prefix's whole blocks, the bytes hashed so
    // far and the prefix's unhashed tail (`buffered` bytes, then zeros).
    uint32_t state[5] = {0, 0, 0, 0, 0};
    uint32_t buffered = 0;
    uint64_t bits = 0;
    unsigned char tail[64] = {};
  };
  std::vector<HashJob> hash_jobs_;
  bool minimal_flag_called_events_ = false;
};

// CompileDefinitions compiles a `/flags/definitions` body. INVALID_ARGUMENT
// when it is not an object with a `flags` array. Malformed parts of one flag
// (a bad cohort, an unknown operator) do not fail the whole: they make that
// flag inconclusive when reached.
absl::StatusOr<std::shared_ptr<const CompiledDefinitions>> CompileDefinitions(nlohmann::json body);

// EvaluateFlag decides `flag` (from `definitions`) for `context` at `now`.
// A caller deciding several flags for one context passes the same `cache`
// to each call (nullptr: none); the results are the same either way.
FlagEvaluation EvaluateFlag(const CompiledDefinitions& definitions, const CompiledFlag& flag,
                            const EvaluationContext& context, absl::Time now,
                            EvaluationCache* cache = nullptr);

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_EVALUATOR_H_
