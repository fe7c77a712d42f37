#include "server/service/flag_results.h"

#include <cstring>
#include <optional>
#include <utility>

#include "server/posthog/json_struct.h"
#include "server/posthog/value_wire.h"
#include "server/posthog/wire_format.h"

namespace posthog_gateway {
namespace {

using posthog::v1::FlagResult;

// Field numbers of the messages written by hand (proto/posthog/v1/flag.proto;
// payloads: server/posthog/value_wire.h).
enum ResponseField { kResponseResults = 1, kResponseRequestId = 2 };
enum ResultField {
  kResultKey = 1,
  kResultEnabled = 2,
  kResultVariant = 3,
  kResultPayload = 4,
  kResultReason = 5,
  kResultSource = 6,
  kResultFlagId = 7,
  kResultFlagVersion = 8,
};
enum ReasonField { kReasonCode = 1, kReasonDescription = 2, kReasonConditionIndex = 3 };

posthog::v1::FlagReasonCode ReasonToProto(flags::ReasonCode code) {
  switch (code) {
    case flags::ReasonCode::kConditionMatch:
      return posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH;
    case flags::ReasonCode::kNoConditionMatch:
      return posthog::v1::FLAG_REASON_CODE_NO_CONDITION_MATCH;
    case flags::ReasonCode::kOutOfRolloutBound:
      return posthog::v1::FLAG_REASON_CODE_OUT_OF_ROLLOUT_BOUND;
    case flags::ReasonCode::kNoGroupType:
      return posthog::v1::FLAG_REASON_CODE_NO_GROUP_TYPE;
    case flags::ReasonCode::kSuperConditionValue:
      return posthog::v1::FLAG_REASON_CODE_SUPER_CONDITION_VALUE;
    case flags::ReasonCode::kHoldoutConditionValue:
      return posthog::v1::FLAG_REASON_CODE_HOLDOUT_CONDITION_VALUE;
    case flags::ReasonCode::kFlagDisabled:
      return posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED;
  }
  return posthog::v1::FLAG_REASON_CODE_ERROR;
}

// The contents of the FlagReason that FillLocalResult builds for
// `evaluation`. Proto3 leaves out scalars that hold their default, except
// where a field has presence (condition_index).
std::string EncodeReason(const flags::FlagEvaluation& evaluation) {
  const posthog::v1::FlagReasonCode code = ReasonToProto(evaluation.reason);
  std::string buffer;
  const absl::string_view description = flags::ReasonDescription(evaluation, &buffer);
  std::string out;
  if (code != 0) {
    wire::Append(&out, wire::VarintFieldSize(code),
                 [&](char* p) { return wire::PutVarintField(kReasonCode, code, p); });
  }
  if (!description.empty()) wire::BytesField(kReasonDescription, description, &out);
  if (evaluation.condition_index >= 0) {
    wire::Append(&out, wire::VarintFieldSize(evaluation.condition_index), [&](char* p) {
      return wire::PutVarintField(kReasonConditionIndex, evaluation.condition_index, p);
    });
  }
  return out;
}

// EncodeReason for every reason and the condition indexes -1 to 63, encoded
// once: a reply copies them (formatting and sizing each result's reason was
// a tenth of the reply's encoding in a perf profile of 50 flags, issue 18).
class ReasonTable {
 public:
  static constexpr int kIndexes = 65;  // -1 to 63.

  ReasonTable() {
    for (int reason = 0; reason < kReasons; ++reason) {
      for (int index = -1; index < kIndexes - 1; ++index) {
        flags::FlagEvaluation evaluation;
        evaluation.decided = true;
        evaluation.reason = static_cast<flags::ReasonCode>(reason);
        evaluation.condition_index = index;
        bytes_[reason][index + 1] = EncodeReason(evaluation);
      }
    }
  }

  static const ReasonTable& Get() {
    static const ReasonTable* const table = new ReasonTable();
    return *table;
  }

  // The bytes for `evaluation`, or nullopt outside the table.
  std::optional<absl::string_view> Find(const flags::FlagEvaluation& evaluation) const {
    const int reason = static_cast<int>(evaluation.reason);
    const int index = evaluation.condition_index + 1;
    if (reason < 0 || reason >= kReasons || index < 0 || index >= kIndexes) return std::nullopt;
    return bytes_[reason][index];
  }

 private:
  static constexpr int kReasons = static_cast<int>(flags::ReasonCode::kFlagDisabled) + 1;
  std::string bytes_[kReasons][kIndexes];
};

// A FlagResult as FillLocalResult builds it, as the value of the map entry
// for `key` in `out`: the reason's bytes come from `reasons`, the payload's
// from the definitions (FlagEvaluation::payload_bytes) when they have them.
void AppendLocalEntry(absl::string_view key, const flags::FlagEvaluation& evaluation,
                      const ReasonTable& reasons, std::string* out) {
  std::string reason_buffer;
  absl::string_view reason;
  if (std::optional<absl::string_view> known = reasons.Find(evaluation)) {
    reason = *known;
  } else {
    reason_buffer = EncodeReason(evaluation);
    reason = reason_buffer;
  }
  std::string payload_buffer;
  absl::string_view payload = evaluation.payload_bytes;
  if (evaluation.payload != nullptr && payload.empty()) {
    payload_buffer = value_wire::EncodeValue(*evaluation.payload);
    payload = payload_buffer;
  }

  const size_t key_field = wire::BytesFieldSize(key.size());
  const size_t result_size =
      key_field + (evaluation.enabled ? 2 : 0) +
      (evaluation.variant.empty() ? 0 : wire::BytesFieldSize(evaluation.variant.size())) +
      (evaluation.payload != nullptr ? wire::BytesFieldSize(payload.size()) : 0) +
      wire::BytesFieldSize(reason.size()) + 2 +
      (evaluation.flag_id != 0 ? wire::VarintFieldSize(evaluation.flag_id) : 0) +
      (evaluation.flag_version != 0 ? wire::VarintFieldSize(evaluation.flag_version) : 0);
  const size_t entry_size = key_field + wire::BytesFieldSize(result_size);

  wire::Append(out, wire::BytesFieldSize(entry_size), [&](char* p) {
    p = wire::PutTag(kResponseResults, wire::kLength, p);
    p = wire::PutVarint(entry_size, p);
    // The map entry's key and the result's key are both field 1: the same bytes.
    char* key_start = p;
    p = wire::PutBytes(wire::kEntryKey, key, p);
    p = wire::PutTag(wire::kEntryValue, wire::kLength, p);
    p = wire::PutVarint(result_size, p);
    static_assert(static_cast<int>(wire::kEntryKey) == static_cast<int>(kResultKey));
    std::memcpy(p, key_start, key_field);
    p += key_field;
    if (evaluation.enabled) p = wire::PutVarintField(kResultEnabled, 1, p);
    if (!evaluation.variant.empty()) p = wire::PutBytes(kResultVariant, evaluation.variant, p);
    if (evaluation.payload != nullptr) p = wire::PutBytes(kResultPayload, payload, p);
    p = wire::PutBytes(kResultReason, reason, p);
    p = wire::PutVarintField(kResultSource, posthog::v1::FLAG_DECISION_SOURCE_LOCAL, p);
    if (evaluation.flag_id != 0) p = wire::PutVarintField(kResultFlagId, evaluation.flag_id, p);
    if (evaluation.flag_version != 0) {
      p = wire::PutVarintField(kResultFlagVersion, evaluation.flag_version, p);
    }
    return p;
  });
}

// Any FlagResult, as the value of the map entry for `key` in `out`.
void AppendEntry(absl::string_view key, const FlagResult& result, std::string* out) {
  const size_t result_size = result.ByteSizeLong();
  const size_t entry_size = wire::BytesFieldSize(key.size()) + wire::BytesFieldSize(result_size);
  wire::Append(out, wire::BytesFieldSize(entry_size), [&](char* p) {
    p = wire::PutTag(kResponseResults, wire::kLength, p);
    p = wire::PutVarint(entry_size, p);
    p = wire::PutBytes(wire::kEntryKey, key, p);
    p = wire::PutTag(wire::kEntryValue, wire::kLength, p);
    p = wire::PutVarint(result_size, p);
    return reinterpret_cast<char*>(
        result.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p)));
  });
}

// FillLocalResult fills `result` (fresh) from a decided local evaluation.
void FillLocalResult(const std::string& key, const flags::FlagEvaluation& evaluation,
                     FlagResult* result) {
  result->set_key(key);
  result->set_enabled(evaluation.enabled);
  if (!evaluation.variant.empty()) {
    result->set_variant(evaluation.variant.data(), evaluation.variant.size());
  }
  if (evaluation.payload != nullptr)
    *result->mutable_payload() = ValueFromJson(*evaluation.payload);
  posthog::v1::FlagReason* reason = result->mutable_reason();
  reason->set_code(ReasonToProto(evaluation.reason));
  std::string buffer;
  const absl::string_view description = flags::ReasonDescription(evaluation, &buffer);
  reason->set_description(description.data(), description.size());
  if (evaluation.condition_index >= 0) reason->set_condition_index(evaluation.condition_index);
  result->set_source(posthog::v1::FLAG_DECISION_SOURCE_LOCAL);
  result->set_flag_id(evaluation.flag_id);
  result->set_flag_version(evaluation.flag_version);
}

}  // namespace

void FlagResults::SetLocal(const std::string& key, const flags::FlagEvaluation& evaluation) {
  entries_.emplace_back(key, evaluation);
}

void FlagResults::Set(const std::string& key, FlagResult result) {
  entries_.emplace_back(key, std::move(result));
}

FlagResults::Summary FlagResults::Summarize(size_t i) const {
  Summary summary;
  if (const auto* local = std::get_if<flags::FlagEvaluation>(&entries_[i].result)) {
    summary.local = true;
    summary.enabled = local->enabled;
    summary.variant = local->variant;
    if (local->payload != nullptr) summary.payload = *local->payload;
    std::string buffer;
    summary.reason_description = std::string(flags::ReasonDescription(*local, &buffer));
    summary.flag_id = local->flag_id;
    summary.flag_version = local->flag_version;
    return summary;
  }
  const FlagResult& result = std::get<FlagResult>(entries_[i].result);
  summary.local = result.source() == posthog::v1::FLAG_DECISION_SOURCE_LOCAL;
  summary.enabled = result.enabled();
  summary.variant = result.variant();
  if (result.has_payload()) summary.payload = JsonFromValue(result.payload());
  summary.reason_description = result.reason().description();
  summary.flag_id = result.flag_id();
  summary.flag_version = result.flag_version();
  summary.error_code = result.error_code();
  return summary;
}

FlagResult FlagResults::ToProto(size_t i) const {
  const Entry& entry = entries_[i];
  if (const auto* local = std::get_if<flags::FlagEvaluation>(&entry.result)) {
    FlagResult result;
    FillLocalResult(entry.key, *local, &result);
    return result;
  }
  return std::get<FlagResult>(entry.result);
}

std::string FlagResults::EncodeResponse(absl::string_view request_id) const {
  std::string out;
  out.reserve(entries_.size() * 128 + request_id.size() + 8);
  const ReasonTable& reasons = ReasonTable::Get();
  for (const Entry& entry : entries_) {
    if (const auto* local = std::get_if<flags::FlagEvaluation>(&entry.result)) {
      AppendLocalEntry(entry.key, *local, reasons, &out);
    } else {
      AppendEntry(entry.key, std::get<FlagResult>(entry.result), &out);
    }
  }
  if (!request_id.empty()) wire::BytesField(kResponseRequestId, request_id, &out);
  return out;
}

}  // namespace posthog_gateway
