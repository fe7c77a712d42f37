#ifndef SERVER_POSTHOG_FLAG_RESULT_WIRE_H_
#define SERVER_POSTHOG_FLAG_RESULT_WIRE_H_

// The parts of a locally decided posthog.v1.FlagResult
// (proto/posthog/v1/flag.proto) that do not depend on the person, as wire
// bytes: the flag evaluator encodes them once per definitions snapshot
// (server/flags/compile.cc) and the EvaluateFlags reply
// (server/service/flag_results.cc) copies them instead of encoding each
// field per result and call. The reply's own fallback for a result without
// them is built from the same functions, so both ways give the same bytes.
//
// A local result's fields, in field order (proto3: fields holding their
// default are left out, as the generated code leaves them out):
//   KeyField        key (1)
//   EnabledFields   enabled (2), variant (3), payload (4): empty when disabled
//   ReasonField     reason (5)
//   LocalTail       source (6) = LOCAL, flag_id (7), flag_version (8)
// The map entry of EvaluateFlagsResponse.results (key 1, value 2) starts
// with the same bytes as KeyField: a map entry's key is field 1 too.
//
// tests/flags/flag_results_test.cc compares replies assembled from these
// parts with the generated code's serialization.

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace posthog_gateway::flag_result_wire {

// Field numbers of posthog.v1.FlagResult and posthog.v1.FlagReason.
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

// KeyField is field 1 holding `key`.
std::string KeyField(absl::string_view key);

// EnabledFields are the fields of an enabled result: enabled, then the
// variant unless empty, then the payload when `payload_bytes` is not null
// (a google.protobuf.Value's contents, server/posthog/value_wire.h).
std::string EnabledFields(absl::string_view variant, const std::string* payload_bytes);

// ReasonField is the reason field around a FlagReason's contents.
std::string ReasonField(int reason_code, absl::string_view description, int condition_index);

// LocalTail is source LOCAL, then flag_id and flag_version unless 0.
std::string LocalTail(int64_t flag_id, int64_t flag_version);

}  // namespace posthog_gateway::flag_result_wire

#endif  // SERVER_POSTHOG_FLAG_RESULT_WIRE_H_
