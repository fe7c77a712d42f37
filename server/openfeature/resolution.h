#ifndef SERVER_OPENFEATURE_RESOLUTION_H_
#define SERVER_OPENFEATURE_RESOLUTION_H_

// PostHog's flag results in OpenFeature's terms, for the gateway's two
// OpenFeature front doors (flagd's gRPC evaluation protocol and OFREP over
// HTTP). docs/openfeature.md states the mapping for callers; this is its
// one implementation.
//
// Context: an OpenFeature evaluation context (a JSON object) becomes who a
// flag is evaluated for. `targetingKey` is the distinct id; `$groups`
// (group type → group key), `$group_properties` (group type → properties)
// and `$device_id` carry PostHog's groups and device id; every other
// attribute is a person property (`$device_id` too, as posthog-node reads
// the device id from the person properties).
//
// Result: what the person gets from PostHog (true/false or a variant key,
// and the payload of that value) read as the type the caller asked for:
// - boolean: `enabled`; the variant is the variant key, else "true"/"false".
// - string: the variant key; a person without a variant gets the caller's
//   default (reason DEFAULT or DISABLED, no value); a boolean flag that is
//   on is a TYPE_MISMATCH.
// - int, float, object: the payload of the value the person gets; none →
//   the caller's default; a payload of another type → TYPE_MISMATCH; an
//   object payload that is a string but not JSON → PARSE_ERROR.
// - any (ResolveAll, OFREP): the variant key, else the boolean.
// Reasons: DISABLED (flag off), TARGETING_MATCH (a condition set or early
// access matched), SPLIT (a variant or a holdout or rollout bucket decided:
// PostHog's hash), DEFAULT (nothing matched). Whenever no value is given,
// the reason is DEFAULT or DISABLED, which providers read as "use the
// caller's default".
//
// Pure functions; thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.pb.h"

namespace posthog_gateway::openfeature {

// The type a caller asks a flag's value as.
enum class ValueType { kBoolean, kString, kInt, kFloat, kObject, kAny };

// OpenFeature's error codes that the gateway returns.
enum class ErrorCode {
  kNone,
  kFlagNotFound,
  kTypeMismatch,
  kParseError,
  kTargetingKeyMissing,
  kInvalidContext,
  kGeneral,
};

// ErrorCodeName is OpenFeature's name of `code` (`FLAG_NOT_FOUND`, ...;
// empty for kNone).
absl::string_view ErrorCodeName(ErrorCode code);

// One flag's resolution.
struct Resolution {
  ErrorCode error = ErrorCode::kNone;
  std::string error_message;
  // Null when the caller's default applies (and on errors); else a boolean,
  // string, integer, number or object.
  nlohmann::json value;
  // Empty: none.
  std::string variant;
  // OpenFeature's reason (`TARGETING_MATCH`, ...); `ERROR` on errors.
  std::string reason;
  // Flag metadata: `flagId`, `flagVersion` (when known), `posthogReason`
  // (PostHog's description, e.g. "Matched condition set 1") and `decidedBy`
  // (`gateway` or `posthog`); for kAny, `payload`: the payload of the value,
  // as JSON text. A JSON object of strings and numbers.
  nlohmann::json metadata = nlohmann::json::object();
};

// The context attributes with a meaning of their own.
inline constexpr absl::string_view kTargetingKey = "targetingKey";
inline constexpr absl::string_view kGroupsAttribute = "$groups";
inline constexpr absl::string_view kGroupPropertiesAttribute = "$group_properties";
inline constexpr absl::string_view kDeviceIdAttribute = "$device_id";

// ContextFromOpenFeature converts an evaluation context (a JSON object; null
// counts as empty). `targetingKey` must be a non-empty string; `$groups` an
// object of strings (numbers are taken as their JSON); `$group_properties`
// an object of objects; `$device_id` a string. A context it cannot use is
// INVALID_ARGUMENT with a BadRequest naming the attribute
// (`context.targetingKey`, ...) and an ErrorInfo whose reason is
// `TARGETING_KEY_MISSING` or `INVALID_CONTEXT` (see ContextErrorCode).
absl::StatusOr<posthog::v1::EvaluationContext> ContextFromOpenFeature(
    const nlohmann::json& context);

// ContextErrorCode is the OpenFeature error of a ContextFromOpenFeature
// failure (kTargetingKeyMissing or kInvalidContext), kNone for any other
// status.
ErrorCode ContextErrorCode(const absl::Status& status);

// Resolve reads `result` (one EvaluateFlag(s) result) as `type`.
Resolution Resolve(const posthog::v1::FlagResult& result, ValueType type);

}  // namespace posthog_gateway::openfeature

#endif  // SERVER_OPENFEATURE_RESOLUTION_H_
