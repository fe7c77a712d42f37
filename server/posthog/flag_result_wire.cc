#include "server/posthog/flag_result_wire.h"

#include "server/posthog/wire_format.h"

namespace posthog_gateway::flag_result_wire {
namespace {

// posthog.v1.FLAG_DECISION_SOURCE_LOCAL.
constexpr int kSourceLocal = 1;

}  // namespace

std::string KeyField(absl::string_view key) {
  std::string out;
  wire::BytesField(kResultKey, key, &out);
  return out;
}

std::string EnabledFields(absl::string_view variant, const std::string* payload_bytes) {
  std::string out;
  wire::VarintField(kResultEnabled, 1, &out);
  if (!variant.empty()) wire::BytesField(kResultVariant, variant, &out);
  if (payload_bytes != nullptr) wire::BytesField(kResultPayload, *payload_bytes, &out);
  return out;
}

std::string ReasonField(int reason_code, absl::string_view description, int condition_index) {
  std::string reason;
  if (reason_code != 0) wire::VarintField(kReasonCode, reason_code, &reason);
  if (!description.empty()) wire::BytesField(kReasonDescription, description, &reason);
  // condition_index has presence: written whenever set, 0 included.
  if (condition_index >= 0) wire::VarintField(kReasonConditionIndex, condition_index, &reason);
  std::string out;
  wire::BytesField(kResultReason, reason, &out);
  return out;
}

std::string LocalTail(int64_t flag_id, int64_t flag_version) {
  std::string out;
  wire::VarintField(kResultSource, kSourceLocal, &out);
  if (flag_id != 0) wire::VarintField(kResultFlagId, flag_id, &out);
  if (flag_version != 0) wire::VarintField(kResultFlagVersion, flag_version, &out);
  return out;
}

}  // namespace posthog_gateway::flag_result_wire
