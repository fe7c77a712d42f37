#include "server/service/flag_results.h"

#include <cstring>
#include <utility>

#include "server/posthog/flag_result_wire.h"
#include "server/posthog/json_struct.h"
#include "server/posthog/value_wire.h"
#include "server/posthog/wire_format.h"

namespace posthog_gateway {
namespace {

using posthog::v1::FlagResult;

using flag_result_wire::kResultKey;

// Field numbers of the response (proto/posthog/v1/flag.proto; a result's:
// server/posthog/flag_result_wire.h).
enum ResponseField { kResponseResults = 1, kResponseRequestId = 2 };

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

// The reason field of the FlagResult that FillLocalResult builds for
// `evaluation`.
std::string EncodeReason(const flags::FlagEvaluation& evaluation) {
  std::string buffer;
  return flag_result_wire::ReasonField(ReasonToProto(evaluation.reason),
                                       flags::ReasonDescription(evaluation, &buffer),
                                       evaluation.condition_index);
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

  // The bytes for `evaluation`, or nullptr outside the table.
  const std::string* Find(const flags::FlagEvaluation& evaluation) const {
    const int reason = static_cast<int>(evaluation.reason);
    const int index = evaluation.condition_index + 1;
    if (reason < 0 || reason >= kReasons || index < 0 || index >= kIndexes) return nullptr;
    return &bytes_[reason][index];
  }

 private:
  static constexpr int kReasons = static_cast<int>(flags::ReasonCode::kFlagDisabled) + 1;
  std::string bytes_[kReasons][kIndexes];
};

// A local result's fields, in field order (flag_result_wire.h).
struct LocalFields {
  absl::string_view key;
  absl::string_view value;
  absl::string_view reason;
  absl::string_view tail;

  size_t ResultSize() const { return key.size() + value.size() + reason.size() + tail.size(); }

  // The map entry's size: its key, then the FlagResult.
  size_t EntrySize() const { return key.size() + wire::BytesFieldSize(ResultSize()); }
};

// The fields of `evaluation` as the definitions and the reason table hold
// them; false when they do not hold them all.
inline bool EncodedFields(const flags::FlagEvaluation& evaluation, const ReasonTable& reasons,
                          LocalFields* fields) {
  if (evaluation.encoded == nullptr || evaluation.encoded_value == nullptr) return false;
  const std::string* reason = reasons.Find(evaluation);
  if (reason == nullptr) return false;
  fields->key = evaluation.encoded->key_field;
  fields->value = *evaluation.encoded_value;
  fields->reason = *reason;
  fields->tail = evaluation.encoded->tail;
  return true;
}

// The same fields encoded here, for a result the definitions hold no bytes
// for; `storage` keeps them.
LocalFields EncodeFields(absl::string_view key, const flags::FlagEvaluation& evaluation,
                         std::string (&storage)[4]) {
  LocalFields fields;
  fields.key = storage[0] = flag_result_wire::KeyField(key);
  if (evaluation.enabled) {
    std::string payload_buffer;
    const std::string* payload = nullptr;
    if (evaluation.payload != nullptr) {
      payload_buffer = evaluation.payload_bytes.empty()
                           ? value_wire::EncodeValue(*evaluation.payload)
                           : std::string(evaluation.payload_bytes);
      payload = &payload_buffer;
    }
    fields.value = storage[1] = flag_result_wire::EnabledFields(evaluation.variant, payload);
  } else if (!evaluation.variant.empty()) {
    // Not from the evaluator (a disabled result has no variant), but written
    // as the generated code would write it.
    wire::BytesField(flag_result_wire::kResultVariant, evaluation.variant, &storage[1]);
    fields.value = storage[1];
  }
  fields.reason = storage[2] = EncodeReason(evaluation);
  fields.tail = storage[3] =
      flag_result_wire::LocalTail(evaluation.flag_id, evaluation.flag_version);
  return fields;
}

// Copies `bytes` to `p` and returns the end: most are a few dozen bytes,
// too few for a call of memcpy to pay.
inline char* Copy(absl::string_view bytes, char* p) {
  const char* from = bytes.data();
  size_t n = bytes.size();
  while (n >= 16) {
    std::memcpy(p, from, 16);
    p += 16;
    from += 16;
    n -= 16;
  }
  if (n >= 8) {
    std::memcpy(p, from, 8);
    std::memcpy(p + n - 8, from + n - 8, 8);
    return p + n;
  }
  for (size_t i = 0; i < n; ++i) p[i] = from[i];
  return p + n;
}

// Writes the map entry for a local result at `p` (room for
// BytesFieldSize(fields.EntrySize())) and returns the end.
char* PutLocalEntry(const LocalFields& fields, char* p) {
  const size_t result_size = fields.ResultSize();
  p = wire::PutTag(kResponseResults, wire::kLength, p);
  p = wire::PutVarint(fields.key.size() + wire::BytesFieldSize(result_size), p);
  // The map entry's key and the result's key are both field 1: the same bytes.
  static_assert(static_cast<int>(wire::kEntryKey) == static_cast<int>(kResultKey));
  p = Copy(fields.key, p);
  p = wire::PutTag(wire::kEntryValue, wire::kLength, p);
  p = wire::PutVarint(result_size, p);
  p = Copy(fields.key, p);
  p = Copy(fields.value, p);
  p = Copy(fields.reason, p);
  return Copy(fields.tail, p);
}

// Any FlagResult, as the map entry for `key`, at `p` (its sizes cached by
// ByteSizeLong); returns the end.
char* PutEntry(absl::string_view key, const FlagResult& result, char* p) {
  const size_t result_size = result.GetCachedSize();
  const size_t entry_size = wire::BytesFieldSize(key.size()) + wire::BytesFieldSize(result_size);
  p = wire::PutTag(kResponseResults, wire::kLength, p);
  p = wire::PutVarint(entry_size, p);
  p = wire::PutBytes(wire::kEntryKey, key, p);
  p = wire::PutTag(wire::kEntryValue, wire::kLength, p);
  p = wire::PutVarint(result_size, p);
  return reinterpret_cast<char*>(
      result.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p)));
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
  CheckLocalKey();
}

void FlagResults::SetLocalBorrowed(const std::string& key,
                                   const flags::FlagEvaluation& evaluation) {
  entries_.emplace_back(&key, evaluation);
  CheckLocalKey();
}

void FlagResults::CheckLocalKey() {
  // The definitions' bytes hold the flag's own key, which the entry's is
  // (the contract; comparing the bytes per result cost 2 % of the handler
  // in a perf profile). A key of another size cannot be it: such a result
  // encodes its fields itself.
  Entry& entry = entries_.back();
  auto& evaluation = std::get<flags::FlagEvaluation>(entry.result);
  const flags::EncodedFlag* encoded = evaluation.encoded;
  if (encoded != nullptr && encoded->key_field.size() != wire::BytesFieldSize(entry.key().size())) {
    evaluation.encoded = nullptr;
  }
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
    FillLocalResult(entry.key(), *local, &result);
    return result;
  }
  return std::get<FlagResult>(entry.result);
}

std::string FlagResults::EncodeResponse(absl::string_view request_id) const {
  std::string out;
  const size_t written = EncodeResponseInto(request_id, [&out](size_t size) {
    out.resize(size);
    return out.data();
  });
  out.resize(written);
  return out;
}

size_t FlagResults::EncodeResponseInto(absl::string_view request_id,
                                       absl::FunctionRef<char*(size_t)> allocate) const {
  // Sized first, then written in one buffer: growing it per result cost a
  // fill and a trim per result.
  const ReasonTable& reasons = ReasonTable::Get();
  size_t size = request_id.empty() ? 0 : wire::BytesFieldSize(request_id.size());
  for (const Entry& entry : entries_) {
    if (const auto* local = std::get_if<flags::FlagEvaluation>(&entry.result)) {
      LocalFields fields;
      if (EncodedFields(*local, reasons, &fields)) {
        size += wire::BytesFieldSize(fields.EntrySize());
      } else {
        std::string storage[4];
        size += wire::BytesFieldSize(EncodeFields(entry.key(), *local, storage).EntrySize());
      }
    } else {
      const size_t result_size = std::get<FlagResult>(entry.result).ByteSizeLong();
      size += wire::BytesFieldSize(wire::BytesFieldSize(entry.key().size()) +
                                   wire::BytesFieldSize(result_size));
    }
  }
  char* const begin = allocate(size);
  char* p = begin;
  for (const Entry& entry : entries_) {
    if (const auto* local = std::get_if<flags::FlagEvaluation>(&entry.result)) {
      LocalFields fields;
      if (EncodedFields(*local, reasons, &fields)) {
        p = PutLocalEntry(fields, p);
      } else {
        std::string storage[4];
        p = PutLocalEntry(EncodeFields(entry.key(), *local, storage), p);
      }
    } else {
      p = PutEntry(entry.key(), std::get<FlagResult>(entry.result), p);
    }
  }
  if (!request_id.empty()) p = wire::PutBytes(kResponseRequestId, request_id, p);
  return p - begin;
}

}  // namespace posthog_gateway
