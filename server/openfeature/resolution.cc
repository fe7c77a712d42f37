#include "server/openfeature/resolution.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway::openfeature {
namespace {

using nlohmann::json;

constexpr absl::string_view kTargetingKeyMissingReason = "TARGETING_KEY_MISSING";
constexpr absl::string_view kInvalidContextReason = "INVALID_CONTEXT";

absl::Status ContextError(absl::string_view reason, absl::string_view attribute,
                          absl::string_view problem) {
  absl::Status status = InvalidArgumentWithViolations(
      absl::StrCat("the evaluation context's `", attribute, "` ", problem),
      {{absl::StrCat("context.", attribute), std::string(problem)}});
  AttachErrorInfo(status, reason);
  return status;
}

// A group key or device id given as a number or boolean: its JSON.
bool ScalarAsString(const json& value, std::string* out) {
  if (value.is_string()) {
    *out = value.get<std::string>();
    return true;
  }
  if (value.is_number() || value.is_boolean()) {
    *out = value.dump();
    return true;
  }
  return false;
}

// OpenFeature's reason for a value PostHog decided.
const char* ReasonFor(const posthog::v1::FlagResult& result) {
  switch (result.reason().code()) {
    case posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED:
      return "DISABLED";
    case posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH:
      return result.variant().empty() ? "TARGETING_MATCH" : "SPLIT";
    case posthog::v1::FLAG_REASON_CODE_SUPER_CONDITION_VALUE:
      return "TARGETING_MATCH";
    case posthog::v1::FLAG_REASON_CODE_OUT_OF_ROLLOUT_BOUND:
    case posthog::v1::FLAG_REASON_CODE_HOLDOUT_CONDITION_VALUE:
      return "SPLIT";
    default:
      return "DEFAULT";
  }
}

Resolution Error(ErrorCode code, std::string message) {
  Resolution resolution;
  resolution.error = code;
  resolution.error_message = std::move(message);
  resolution.reason = "ERROR";
  return resolution;
}

// The caller's default applies: no value, no variant.
void UseDefault(const posthog::v1::FlagResult& result, Resolution* resolution) {
  resolution->value = nullptr;
  resolution->variant.clear();
  resolution->reason = result.reason().code() == posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED
                           ? "DISABLED"
                           : "DEFAULT";
}

// The payload of the value the person gets, read as `type`.
void ResolvePayload(const posthog::v1::FlagResult& result, ValueType type, Resolution* resolution) {
  if (!result.has_payload() ||
      result.payload().kind_case() == google::protobuf::Value::kNullValue) {
    UseDefault(result, resolution);
    return;
  }
  json payload = JsonFromValue(result.payload());
  const std::string& key = result.key();
  switch (type) {
    case ValueType::kInt: {
      const double number = payload.is_number() ? payload.get<double>() : NAN;
      if (!payload.is_number() || std::trunc(number) != number ||
          number < static_cast<double>(std::numeric_limits<int64_t>::min()) ||
          number >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
        *resolution = Error(ErrorCode::kTypeMismatch,
                            absl::StrCat("the payload of flag `", key, "` is not an integer"));
        return;
      }
      resolution->value = static_cast<int64_t>(number);
      return;
    }
    case ValueType::kFloat:
      if (!payload.is_number()) {
        *resolution = Error(ErrorCode::kTypeMismatch,
                            absl::StrCat("the payload of flag `", key, "` is not a number"));
        return;
      }
      resolution->value = payload.get<double>();
      return;
    case ValueType::kObject:
      if (payload.is_string()) {
        // A payload stored as JSON text inside a string.
        json parsed = json::parse(payload.get<std::string>(), nullptr, /*allow_exceptions=*/false);
        if (parsed.is_discarded()) {
          *resolution = Error(ErrorCode::kParseError,
                              absl::StrCat("the payload of flag `", key, "` is not JSON"));
          return;
        }
        payload = std::move(parsed);
      }
      if (!payload.is_object()) {
        *resolution = Error(ErrorCode::kTypeMismatch,
                            absl::StrCat("the payload of flag `", key, "` is not an object"));
        return;
      }
      resolution->value = std::move(payload);
      return;
    default:
      return;
  }
}

}  // namespace

absl::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone:
      return "";
    case ErrorCode::kFlagNotFound:
      return "FLAG_NOT_FOUND";
    case ErrorCode::kTypeMismatch:
      return "TYPE_MISMATCH";
    case ErrorCode::kParseError:
      return "PARSE_ERROR";
    case ErrorCode::kTargetingKeyMissing:
      return "TARGETING_KEY_MISSING";
    case ErrorCode::kInvalidContext:
      return "INVALID_CONTEXT";
    case ErrorCode::kGeneral:
      return "GENERAL";
  }
  return "GENERAL";
}

absl::StatusOr<posthog::v1::EvaluationContext> ContextFromOpenFeature(const json& context) {
  if (context.is_null()) {
    return ContextError(kTargetingKeyMissingReason, kTargetingKey, "is required");
  }
  if (!context.is_object()) {
    absl::Status status = InvalidArgumentWithViolations("the evaluation context must be an object",
                                                        {{"context", "must be an object"}});
    AttachErrorInfo(status, kInvalidContextReason);
    return status;
  }
  posthog::v1::EvaluationContext who;
  json person_properties = json::object();
  for (const auto& [name, value] : context.items()) {
    if (name == kTargetingKey) {
      if (!value.is_string()) {
        return ContextError(kInvalidContextReason, kTargetingKey, "must be a string");
      }
      who.set_distinct_id(value.get<std::string>());
    } else if (name == kGroupsAttribute) {
      if (!value.is_object()) {
        return ContextError(kInvalidContextReason, kGroupsAttribute,
                            "must be an object of group type to group key");
      }
      for (const auto& [type, key] : value.items()) {
        std::string group_key;
        if (!ScalarAsString(key, &group_key)) {
          return ContextError(kInvalidContextReason, absl::StrCat(kGroupsAttribute, ".", type),
                              "must be a string");
        }
        (*who.mutable_groups())[type] = std::move(group_key);
      }
    } else if (name == kGroupPropertiesAttribute) {
      if (!value.is_object()) {
        return ContextError(kInvalidContextReason, kGroupPropertiesAttribute,
                            "must be an object of group type to properties");
      }
      for (const auto& [type, properties] : value.items()) {
        if (!properties.is_object()) {
          return ContextError(kInvalidContextReason,
                              absl::StrCat(kGroupPropertiesAttribute, ".", type),
                              "must be an object");
        }
        (*who.mutable_group_properties())[type] = StructFromJson(properties);
      }
    } else if (name == kDeviceIdAttribute) {
      std::string device_id;
      if (!value.is_null() && !ScalarAsString(value, &device_id)) {
        return ContextError(kInvalidContextReason, kDeviceIdAttribute, "must be a string");
      }
      who.set_device_id(std::move(device_id));
      // Also a person property, as posthog-node reads the device id.
      person_properties[name] = value;
    } else {
      person_properties[name] = value;
    }
  }
  if (who.distinct_id().empty()) {
    return ContextError(kTargetingKeyMissingReason, kTargetingKey,
                        "is required (it is the PostHog distinct id)");
  }
  if (!person_properties.empty())
    *who.mutable_person_properties() = StructFromJson(person_properties);
  return who;
}

ErrorCode ContextErrorCode(const absl::Status& status) {
  std::optional<std::string> reason = ErrorInfoReason(status);
  if (!reason.has_value()) return ErrorCode::kNone;
  if (*reason == kTargetingKeyMissingReason) return ErrorCode::kTargetingKeyMissing;
  if (*reason == kInvalidContextReason) return ErrorCode::kInvalidContext;
  return ErrorCode::kNone;
}

Resolution Resolve(const posthog::v1::FlagResult& result, ValueType type) {
  switch (result.error_code()) {
    case posthog::v1::FLAG_ERROR_CODE_UNSPECIFIED:
      break;
    case posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND:
      return Error(ErrorCode::kFlagNotFound, result.error_message());
    case posthog::v1::FLAG_ERROR_CODE_TYPE_MISMATCH:
      return Error(ErrorCode::kTypeMismatch, result.error_message());
    case posthog::v1::FLAG_ERROR_CODE_PARSE_ERROR:
      return Error(ErrorCode::kParseError, result.error_message());
    default:
      return Error(ErrorCode::kGeneral, result.error_message());
  }
  Resolution resolution;
  resolution.reason = ReasonFor(result);
  if (result.flag_id() != 0) resolution.metadata["flagId"] = result.flag_id();
  if (result.flag_version() != 0) resolution.metadata["flagVersion"] = result.flag_version();
  if (!result.reason().description().empty()) {
    resolution.metadata["posthogReason"] = result.reason().description();
  }
  resolution.metadata["decidedBy"] =
      result.source() == posthog::v1::FLAG_DECISION_SOURCE_LOCAL ? "gateway" : "posthog";
  const std::string& variant = result.variant();
  const bool enabled = result.enabled() || !variant.empty();
  resolution.variant = !variant.empty() ? variant : enabled ? "true" : "false";
  switch (type) {
    case ValueType::kBoolean:
      resolution.value = enabled;
      return resolution;
    case ValueType::kAny:
      if (variant.empty()) {
        resolution.value = enabled;
      } else {
        resolution.value = variant;
      }
      if (result.has_payload() &&
          result.payload().kind_case() != google::protobuf::Value::kNullValue) {
        resolution.metadata["payload"] = JsonFromValue(result.payload()).dump();
      }
      return resolution;
    case ValueType::kString:
      if (!variant.empty()) {
        resolution.value = variant;
      } else if (enabled) {
        return Error(
            ErrorCode::kTypeMismatch,
            absl::StrCat("flag `", result.key(), "` is a boolean flag: resolve it as a boolean"));
      } else {
        UseDefault(result, &resolution);
      }
      return resolution;
    case ValueType::kInt:
    case ValueType::kFloat:
    case ValueType::kObject:
      ResolvePayload(result, type, &resolution);
      return resolution;
  }
  return resolution;
}

}  // namespace posthog_gateway::openfeature
