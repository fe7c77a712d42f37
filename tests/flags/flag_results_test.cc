// FlagResults::EncodeResponse writes EvaluateFlagsResponse bytes by hand;
// these tests parse them with the generated code and compare the message
// with the one built the ordinary way (FlagResults::ToProto per result).

#include "server/service/flag_results.h"

#include <string>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/posthog/json_struct.h"
#include "server/posthog/value_wire.h"

namespace posthog_gateway {
namespace {

using flags::FlagEvaluation;
using flags::ReasonCode;
using nlohmann::json;
using posthog::v1::EvaluateFlagsResponse;
using posthog::v1::FlagResult;

FlagEvaluation Decided(bool enabled, ReasonCode reason, int condition_index) {
  FlagEvaluation evaluation;
  evaluation.decided = true;
  evaluation.enabled = enabled;
  evaluation.reason = reason;
  evaluation.condition_index = condition_index;
  evaluation.flag_id = 1234;
  evaluation.flag_version = 7;
  return evaluation;
}

// The response the generated code builds from the same results.
EvaluateFlagsResponse Expected(const FlagResults& results, const std::string& request_id) {
  EvaluateFlagsResponse response;
  for (size_t i = 0; i < results.size(); ++i) {
    (*response.mutable_results())[results.key(i)] = results.ToProto(i);
  }
  response.set_request_id(request_id);
  return response;
}

void ExpectEncodesLikeGeneratedCode(const FlagResults& results, const std::string& request_id) {
  EvaluateFlagsResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(results.EncodeResponse(request_id)));
  const EvaluateFlagsResponse expected = Expected(results, request_id);
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(expected, parsed)) << difference;
  EXPECT_EQ(parsed.results_size(), static_cast<int>(results.size()));
}

TEST(FlagResultsTest, EveryReasonAndConditionIndex) {
  FlagResults results;
  const ReasonCode reasons[] = {
      ReasonCode::kConditionMatch,      ReasonCode::kNoConditionMatch,
      ReasonCode::kOutOfRolloutBound,   ReasonCode::kNoGroupType,
      ReasonCode::kSuperConditionValue, ReasonCode::kHoldoutConditionValue,
      ReasonCode::kFlagDisabled,
  };
  int n = 0;
  for (ReasonCode reason : reasons) {
    for (int index : {-1, 0, 1, 15, 16, 62, 63, 64, 300}) {
      for (bool enabled : {false, true}) {
        results.SetLocal("flag-" + std::to_string(n++), Decided(enabled, reason, index));
      }
    }
  }
  ExpectEncodesLikeGeneratedCode(results, "0b0e9a1c-2c55-4e8f-9d6b-1f9a3b2c4d5e");
}

TEST(FlagResultsTest, VariantsIdsAndVersions) {
  FlagResults results;
  FlagEvaluation variant = Decided(true, ReasonCode::kConditionMatch, 0);
  variant.variant = "second-variant";
  results.SetLocal("multivariate", variant);
  FlagEvaluation zero_ids = Decided(true, ReasonCode::kConditionMatch, 2);
  zero_ids.flag_id = 0;
  zero_ids.flag_version = 0;
  results.SetLocal("no-ids", zero_ids);
  FlagEvaluation large = Decided(false, ReasonCode::kOutOfRolloutBound, 1);
  large.flag_id = int64_t{1} << 40;
  large.flag_version = -3;  // Ten-byte varint.
  results.SetLocal("large-ids", large);
  results.SetLocal(std::string(200, 'k'), Decided(true, ReasonCode::kConditionMatch, 0));
  ExpectEncodesLikeGeneratedCode(results, "");
}

// Payloads of every JSON type, nested and not, and lengths of one to three
// bytes.
std::vector<json> EveryKindOfPayload() {
  return {
      nullptr,
      true,
      false,
      0,
      -17,
      18446744073709551615ULL,
      3.25,
      -0.0,
      "",
      "text with \"quotes\" and ünïcödé",
      json::array(),
      json::object(),
      json::array({1, "two", nullptr, json::array({false}), json::object({{"k", 1.5}})}),
      json::object({{"a", 1}, {"nested", {{"list", {1, 2, 3}}, {"empty", json::object()}}}}),
      json::object({{"big", std::string(40000, 'x')}}),  // Lengths of three bytes.
      json::object({{"z", 1}, {"a", json::array({json::object({{"y", nullptr}, {"b", true}})})}}),
      json::array({std::string(200, 'y'), -1e300, 1e-300}),
  };
}

// The generated code's own bytes for the message, map fields in key order
// (nlohmann::json keeps an object's keys in that order too).
std::string DeterministicBytes(const google::protobuf::MessageLite& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeWithCachedSizes(&coded);
  }
  return bytes;
}

TEST(FlagResultsTest, PayloadBytesAreProtobufsOwnSerialization) {
  for (const json& payload : EveryKindOfPayload()) {
    const google::protobuf::Value value = ValueFromJson(payload);
    (void)value.ByteSizeLong();  // SerializeWithCachedSizes needs the sizes.
    EXPECT_EQ(value_wire::EncodeValue(payload), DeterministicBytes(value)) << payload.dump();
    EXPECT_EQ(value_wire::ValueSize(payload), value.ByteSizeLong()) << payload.dump();
  }
}

// A reply copies the payload bytes the definitions hold: the same bytes as
// encoding the payload in the reply.
TEST(FlagResultsTest, PrecomputedPayloadBytesGiveTheSameReply) {
  const std::vector<json> payloads = EveryKindOfPayload();
  std::vector<std::string> encoded;
  for (const json& payload : payloads) encoded.push_back(value_wire::EncodeValue(payload));
  FlagResults with_bytes;
  FlagResults without;
  for (size_t i = 0; i < payloads.size(); ++i) {
    FlagEvaluation evaluation = Decided(true, ReasonCode::kConditionMatch, 0);
    evaluation.variant = "control";
    evaluation.payload = &payloads[i];
    without.SetLocal("payload-" + std::to_string(i), evaluation);
    evaluation.payload_bytes = encoded[i];
    with_bytes.SetLocal("payload-" + std::to_string(i), evaluation);
  }
  EXPECT_EQ(with_bytes.EncodeResponse("request"), without.EncodeResponse("request"));
  ExpectEncodesLikeGeneratedCode(with_bytes, "request");
}

TEST(FlagResultsTest, EveryKindOfPayload) {
  const std::vector<json> payloads = EveryKindOfPayload();
  FlagResults results;
  for (size_t i = 0; i < payloads.size(); ++i) {
    FlagEvaluation evaluation = Decided(true, ReasonCode::kConditionMatch, 0);
    evaluation.variant = "control";
    evaluation.payload = &payloads[i];
    results.SetLocal("payload-" + std::to_string(i), evaluation);
  }
  ExpectEncodesLikeGeneratedCode(results, "request");
}

TEST(FlagResultsTest, MessagesFromPostHogAndErrorsAmongLocalResults) {
  FlagResults results;
  results.SetLocal("local", Decided(true, ReasonCode::kConditionMatch, 0));
  FlagResult remote;
  remote.set_key("remote");
  remote.set_enabled(true);
  remote.set_variant("test");
  remote.mutable_payload()->set_string_value("from PostHog");
  remote.mutable_reason()->set_code(posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH);
  remote.mutable_reason()->set_description("Matched condition set 3");
  remote.mutable_reason()->set_condition_index(2);
  remote.set_source(posthog::v1::FLAG_DECISION_SOURCE_REMOTE);
  remote.set_flag_id(9);
  remote.set_flag_version(2);
  results.Set("remote", remote);
  FlagResult error;
  error.set_key("missing");
  error.set_error_code(posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND);
  error.set_error_message("no flag has the key `missing`");
  error.mutable_reason()->set_code(posthog::v1::FLAG_REASON_CODE_ERROR);
  results.Set("missing", error);
  ExpectEncodesLikeGeneratedCode(results, "posthog-request-id");

  EXPECT_EQ(results.ToProto(1).variant(), "test");
  EXPECT_EQ(results.key(2), "missing");
}

TEST(FlagResultsTest, NoResults) {
  FlagResults results;
  ExpectEncodesLikeGeneratedCode(results, "only-an-id");
  EXPECT_TRUE(results.EncodeResponse("").empty());
}

TEST(FlagResultsTest, SummarizeSaysTheSameForLocalAndRemoteResults) {
  FlagResults results;
  const json payload = {{"color", "blue"}};
  FlagEvaluation local = Decided(true, ReasonCode::kConditionMatch, 1);
  local.variant = "blue";
  local.payload = &payload;
  results.SetLocal("local", local);
  results.Set("remote", results.ToProto(0));  // The same result, as a message.

  for (size_t i = 0; i < 2; ++i) {
    const FlagResults::Summary summary = results.Summarize(i);
    EXPECT_EQ(summary.local, true);  // The message says LOCAL too.
    EXPECT_TRUE(summary.enabled);
    EXPECT_EQ(summary.variant, "blue");
    EXPECT_EQ(summary.payload, payload);
    EXPECT_EQ(summary.reason_description, "Matched condition set 2");
    EXPECT_EQ(summary.flag_id, 1234);
    EXPECT_EQ(summary.flag_version, 7);
    EXPECT_EQ(summary.error_code, posthog::v1::FLAG_ERROR_CODE_UNSPECIFIED);
  }
}

}  // namespace
}  // namespace posthog_gateway
