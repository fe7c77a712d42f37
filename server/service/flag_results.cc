#include "server/service/flag_results.h"

#include <cstring>
#include <utility>

#include "server/posthog/json_struct.h"

namespace posthog_gateway {
namespace {

using posthog::v1::FlagResult;

// The protobuf wire format (protobuf.dev/programming-guides/encoding), as
// far as the messages written here need it. Writers append to a string;
// PutX write through a pointer into room already made (the hot path).
namespace wire {

enum Type { kVarint = 0, kFixed64 = 1, kLength = 2 };

constexpr size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

char* PutVarint(uint64_t value, char* p) {
  while (value >= 0x80) {
    *p++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *p++ = static_cast<char>(value);
  return p;
}

// Field numbers below 16 take a one-byte tag.
char* PutTag(int field, Type type, char* p) {
  return PutVarint((static_cast<uint64_t>(field) << 3) | type, p);
}

char* PutBytes(int field, absl::string_view bytes, char* p) {
  p = PutTag(field, kLength, p);
  p = PutVarint(bytes.size(), p);
  std::memcpy(p, bytes.data(), bytes.size());
  return p + bytes.size();
}

// int32, int64, bool and enum fields: negative numbers take ten bytes.
char* PutVarintField(int field, int64_t value, char* p) {
  return PutVarint(static_cast<uint64_t>(value), PutTag(field, kVarint, p));
}

size_t BytesFieldSize(size_t bytes) { return 1 + VarintSize(bytes) + bytes; }
size_t VarintFieldSize(int64_t value) { return 1 + VarintSize(static_cast<uint64_t>(value)); }

// Appends through Put*: `bound` is at least what `put` writes.
template <typename Put>
void Append(std::string* out, size_t bound, Put put) {
  const size_t at = out->size();
  out->resize(at + bound);
  char* end = put(out->data() + at);
  out->resize(end - out->data());
}

void BytesField(int field, absl::string_view bytes, std::string* out) {
  Append(out, BytesFieldSize(bytes.size()), [&](char* p) { return PutBytes(field, bytes, p); });
}

}  // namespace wire

// Field numbers of the messages written by hand (proto/posthog/v1/flag.proto
// and google/protobuf/struct.proto).
enum ResponseField { kResponseResults = 1, kResponseRequestId = 2 };
enum MapEntryField { kEntryKey = 1, kEntryValue = 2 };
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
enum ValueField {
  kValueNull = 1,
  kValueNumber = 2,
  kValueString = 3,
  kValueBool = 4,
  kValueStruct = 5,
  kValueList = 6,
};
enum StructField { kStructFields = 1 };
enum ListField { kListValues = 1 };

// A google.protobuf.Value as ValueFromJson builds it, in two passes so that
// nothing is built on the side: ValueSize is its encoded size, PutValue
// writes it into room already made. (Building each nested message in a
// string of its own, then copying it into its parent's, cost a few
// allocations per payload and call.) Nested values are sized again by each
// level above them: payloads are small and shallow.
size_t ValueSize(const nlohmann::json& json);

// The contents of a ListValue (`json` an array) and of a Struct (`json` an
// object): what ValueSize wraps in a field and PutValue prefixes with.
size_t ListSize(const nlohmann::json& json) {
  size_t list = 0;
  for (const auto& item : json) list += wire::BytesFieldSize(ValueSize(item));
  return list;
}

size_t StructSize(const nlohmann::json& json) {
  size_t fields = 0;
  for (auto it = json.begin(); it != json.end(); ++it) {
    fields += wire::BytesFieldSize(wire::BytesFieldSize(it.key().size()) +
                                   wire::BytesFieldSize(ValueSize(it.value())));
  }
  return fields;
}

size_t ValueSize(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      return wire::VarintFieldSize(json.get<bool>() ? 1 : 0);
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return 9;
    case nlohmann::json::value_t::string:
      return wire::BytesFieldSize(json.get_ref<const std::string&>().size());
    case nlohmann::json::value_t::array:
      return wire::BytesFieldSize(ListSize(json));
    case nlohmann::json::value_t::object:
      return wire::BytesFieldSize(StructSize(json));
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
    case nlohmann::json::value_t::binary:
      break;
  }
  return wire::VarintFieldSize(google::protobuf::NULL_VALUE);
}

char* PutValue(const nlohmann::json& json, char* p) {
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      return wire::PutVarintField(kValueBool, json.get<bool>() ? 1 : 0, p);
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: {
      p = wire::PutTag(kValueNumber, wire::kFixed64, p);
      const double value = json.get<double>();
      uint64_t bits;
      std::memcpy(&bits, &value, sizeof bits);
      for (int i = 0; i < 8; ++i) *p++ = static_cast<char>(bits >> (8 * i));
      return p;
    }
    case nlohmann::json::value_t::string:
      return wire::PutBytes(kValueString, json.get_ref<const std::string&>(), p);
    case nlohmann::json::value_t::array: {
      p = wire::PutTag(kValueList, wire::kLength, p);
      p = wire::PutVarint(ListSize(json), p);
      for (const auto& item : json) {
        p = wire::PutTag(kListValues, wire::kLength, p);
        p = wire::PutVarint(ValueSize(item), p);
        p = PutValue(item, p);
      }
      return p;
    }
    case nlohmann::json::value_t::object: {
      p = wire::PutTag(kValueStruct, wire::kLength, p);
      p = wire::PutVarint(StructSize(json), p);
      for (auto it = json.begin(); it != json.end(); ++it) {
        const size_t value = ValueSize(it.value());
        p = wire::PutTag(kStructFields, wire::kLength, p);
        p = wire::PutVarint(wire::BytesFieldSize(it.key().size()) + wire::BytesFieldSize(value), p);
        p = wire::PutBytes(kEntryKey, it.key(), p);
        p = wire::PutTag(kEntryValue, wire::kLength, p);
        p = wire::PutVarint(value, p);
        p = PutValue(it.value(), p);
      }
      return p;
    }
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
    case nlohmann::json::value_t::binary:
      break;
  }
  return wire::PutVarintField(kValueNull, google::protobuf::NULL_VALUE, p);
}

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

// A FlagResult as FillLocalResult builds it, as the value of the map entry
// for `key` in `out`. Proto3 leaves out scalars that hold their default,
// except where a field has presence (the payload, the reason and its
// condition_index).
void AppendLocalEntry(absl::string_view key, const flags::FlagEvaluation& evaluation,
                      std::string* out) {
  const size_t payload_size = evaluation.payload != nullptr ? ValueSize(*evaluation.payload) : 0;
  const posthog::v1::FlagReasonCode code = ReasonToProto(evaluation.reason);
  std::string buffer;
  const absl::string_view description = flags::ReasonDescription(evaluation, &buffer);
  const bool has_index = evaluation.condition_index >= 0;

  const size_t reason_size = (code != 0 ? wire::VarintFieldSize(code) : 0) +
                             (description.empty() ? 0 : wire::BytesFieldSize(description.size())) +
                             (has_index ? wire::VarintFieldSize(evaluation.condition_index) : 0);
  const size_t result_size =
      wire::BytesFieldSize(key.size()) + (evaluation.enabled ? 2 : 0) +
      (evaluation.variant.empty() ? 0 : wire::BytesFieldSize(evaluation.variant.size())) +
      (evaluation.payload != nullptr ? wire::BytesFieldSize(payload_size) : 0) +
      wire::BytesFieldSize(reason_size) + 2 +
      (evaluation.flag_id != 0 ? wire::VarintFieldSize(evaluation.flag_id) : 0) +
      (evaluation.flag_version != 0 ? wire::VarintFieldSize(evaluation.flag_version) : 0);
  const size_t entry_size = wire::BytesFieldSize(key.size()) + wire::BytesFieldSize(result_size);

  wire::Append(out, wire::BytesFieldSize(entry_size), [&](char* p) {
    p = wire::PutTag(kResponseResults, wire::kLength, p);
    p = wire::PutVarint(entry_size, p);
    p = wire::PutBytes(kEntryKey, key, p);
    p = wire::PutTag(kEntryValue, wire::kLength, p);
    p = wire::PutVarint(result_size, p);
    p = wire::PutBytes(kResultKey, key, p);
    if (evaluation.enabled) p = wire::PutVarintField(kResultEnabled, 1, p);
    if (!evaluation.variant.empty()) p = wire::PutBytes(kResultVariant, evaluation.variant, p);
    if (evaluation.payload != nullptr) {
      p = wire::PutTag(kResultPayload, wire::kLength, p);
      p = wire::PutVarint(payload_size, p);
      p = PutValue(*evaluation.payload, p);
    }
    p = wire::PutTag(kResultReason, wire::kLength, p);
    p = wire::PutVarint(reason_size, p);
    if (code != 0) p = wire::PutVarintField(kReasonCode, code, p);
    if (!description.empty()) p = wire::PutBytes(kReasonDescription, description, p);
    if (has_index) p = wire::PutVarintField(kReasonConditionIndex, evaluation.condition_index, p);
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
    p = wire::PutBytes(kEntryKey, key, p);
    p = wire::PutTag(kEntryValue, wire::kLength, p);
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
  entries_.push_back({key, evaluation});
}

void FlagResults::Set(const std::string& key, FlagResult result) {
  entries_.push_back({key, std::move(result)});
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
  for (const Entry& entry : entries_) {
    if (const auto* local = std::get_if<flags::FlagEvaluation>(&entry.result)) {
      AppendLocalEntry(entry.key, *local, &out);
    } else {
      AppendEntry(entry.key, std::get<FlagResult>(entry.result), &out);
    }
  }
  if (!request_id.empty()) wire::BytesField(kResponseRequestId, request_id, &out);
  return out;
}

}  // namespace posthog_gateway
