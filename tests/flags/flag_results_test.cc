// FlagResults::EncodeResponse writes EvaluateFlagsResponse bytes by hand;
// these tests parse them with the generated code and compare the message
// with the one built the ordinary way (FlagResults::ToProto per result).

#include "server/service/flag_results.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/flags/evaluator.h"
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

// Borrowed keys (SetLocalBorrowed) among copied ones, short and long, while
// the results grow and move: each result keeps its own key.
TEST(FlagResultsTest, BorrowedAndCopiedKeys) {
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back(i % 3 == 0 ? absl::StrCat("k", i) : absl::StrCat("a-longer-flag-key-", i));
  }
  FlagResults results;
  for (int i = 0; i < 100; ++i) {
    const FlagEvaluation evaluation = Decided(i % 2 == 0, ReasonCode::kConditionMatch, i % 5);
    if (i % 4 == 0) {
      results.SetLocal(absl::StrCat("copied-", i), evaluation);
    } else {
      results.SetLocalBorrowed(keys[i], evaluation);
    }
  }
  ASSERT_EQ(results.size(), 100u);
  for (size_t i = 0; i < results.size(); ++i) {
    if (i % 4 == 0) {
      EXPECT_EQ(results.key(i), absl::StrCat("copied-", i));
    } else {
      EXPECT_EQ(&results.key(i), &keys[i]);
    }
    EXPECT_EQ(results.ToProto(i).key(), results.key(i));
  }
  ExpectEncodesLikeGeneratedCode(results, "request");
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

// Definitions whose results take every path of the reply's pre-encoded
// fields (FlagEvaluation::encoded): variants with and without payloads, a
// `true` payload, variant overrides, holdouts (one naming no variant), ids
// and versions of 0, large and negative, disabled and group flags, keys and
// payloads of one- to three-byte lengths, a condition index past the
// reason table's 64.
json DefinitionsForEncoding() {
  json variants = json::array();
  for (int i = 0; i < 4; ++i) {
    variants.push_back({{"key", "variant-" + std::to_string(i)}, {"rollout_percentage", 25}});
  }
  json many_conditions = json::array();
  for (int i = 0; i < 70; ++i) {
    many_conditions.push_back(
        {{"properties", {{{"key", "n"}, {"type", "person"}, {"operator", "exact"}, {"value", i}}}},
         {"rollout_percentage", 100}});
  }
  json flags = json::array({
      {{"key", "boolean"},
       {"id", 1},
       {"version", 2},
       {"active", true},
       {"filters", {{"groups", {{{"rollout_percentage", 50}}}}}}},
      {{"key", "boolean-with-payload"},
       {"id", 1LL << 40},
       {"version", -3},
       {"active", true},
       {"filters",
        {{"groups", {{{"rollout_percentage", 70}}}},
         {"payloads", {{"true", "{\"a\": [1, null, \"x\"]}"}, {"false", "7"}}}}}},
      {{"key", "multivariate"},
       {"id", 0},
       {"version", 0},
       {"active", true},
       {"filters",
        {{"groups", {{{"rollout_percentage", 80}}}},
         {"multivariate", {{"variants", variants}}},
         {"payloads", {{"variant-1", "\"one\""}, {"variant-3", std::string(20000, 'p')}}}}}},
      {{"key", "override"},
       {"id", 5},
       {"version", 1},
       {"active", true},
       {"filters",
        {{"groups",
          {{{"properties",
             {{{"key", "plan"}, {"type", "person"}, {"operator", "exact"}, {"value", "pro"}}}},
            {"rollout_percentage", 100},
            {"variant", "variant-2"}},
           {{"rollout_percentage", 100}}}},
         {"multivariate", {{"variants", variants}}},
         {"payloads", {{"variant-2", "[true, false]"}}}}}},
      {{"key", "holdout"},
       {"id", 6},
       {"version", 9},
       {"active", true},
       {"filters",
        {{"groups", {{{"rollout_percentage", 100}}}},
         {"holdout", {{"id", 12}, {"exclusion_percentage", 40}}},
         {"payloads", {{"holdout-12", "{\"held\": true}"}}}}}},
      {{"key", "holdout-variant"},
       {"id", 7},
       {"version", 1},
       {"active", true},
       {"filters",
        {{"groups", {{{"rollout_percentage", 100}}}},
         {"multivariate", {{"variants", variants}}},
         {"holdout_groups", {{{"rollout_percentage", 40}, {"variant", "variant-0"}}}}}}},
      {{"key", "disabled"},
       {"id", 8},
       {"version", 1},
       {"active", false},
       {"filters", {{"payloads", {{"true", "1"}}}}}},
      {{"key", "group"},
       {"id", 9},
       {"version", 1},
       {"active", true},
       {"filters",
        {{"aggregation_group_type_index", 0}, {"groups", {{{"rollout_percentage", 100}}}}}}},
      {{"key", "many-conditions"},
       {"id", 10},
       {"version", 4},
       {"active", true},
       {"filters", {{"groups", many_conditions}}}},
      {{"key", std::string(300, 'k')},
       {"id", 11},
       {"version", 1},
       {"active", true},
       {"filters", {{"groups", {{{"rollout_percentage", 30}}}}}}},
  });
  return {{"flags", flags}, {"group_type_mapping", {{"0", "company"}}}};
}

// The generated code's bytes for a response holding `key` → `result` only.
std::string GeneratedEntryBytes(const std::string& key, const FlagResult& result) {
  EvaluateFlagsResponse response;
  (*response.mutable_results())[key] = result;
  (void)response.ByteSizeLong();
  return DeterministicBytes(response);
}

TEST(FlagResultsTest, PreEncodedFieldsAreTheGeneratedCodesBytes) {
  absl::StatusOr<std::shared_ptr<const flags::CompiledDefinitions>> definitions =
      flags::CompileDefinitions(DefinitionsForEncoding());
  ASSERT_TRUE(definitions.ok()) << definitions.status();
  std::set<std::string> outcomes;
  int encoded = 0;
  for (int person = 0; person < 300; ++person) {
    flags::EvaluationContext context;
    context.distinct_id = "person-" + std::to_string(person);
    context.person_properties = {{"plan", person % 3 == 0 ? "pro" : "free"}, {"n", person % 80}};
    FlagResults results;
    FlagResults without_bytes;  // The same results, every field encoded by the reply.
    for (const auto& flag : (*definitions)->flags()) {
      const std::string& key = flags::CompiledDefinitions::FlagKey(*flag);
      FlagEvaluation evaluation =
          flags::EvaluateFlag(**definitions, *flag, context, absl::UnixEpoch());
      ASSERT_TRUE(evaluation.decided) << key << ": " << evaluation.inconclusive_reason;
      results.SetLocal(key, evaluation);
      if (evaluation.encoded != nullptr && evaluation.encoded_value != nullptr) ++encoded;
      outcomes.insert(absl::StrCat(key.substr(0, 20), " ", evaluation.enabled, " ",
                                   evaluation.variant, " ", evaluation.condition_index));
      FlagEvaluation plain = evaluation;
      plain.encoded = nullptr;
      plain.encoded_value = nullptr;
      without_bytes.SetLocal(key, plain);
      // Each result alone, byte for byte as the generated code writes it.
      FlagResults one;
      one.SetLocal(key, evaluation);
      EXPECT_EQ(one.EncodeResponse(""), GeneratedEntryBytes(key, one.ToProto(0)))
          << key << " for " << context.distinct_id;
    }
    EXPECT_EQ(results.EncodeResponse("id"), without_bytes.EncodeResponse("id"));
    ExpectEncodesLikeGeneratedCode(results, "id");
  }
  // The definitions' bytes served nearly every result, and the results
  // varied: both values of every flag, variants with and without payloads,
  // holdouts, the 70th condition.
  EXPECT_GT(encoded, 300 * 9);
  EXPECT_GT(outcomes.size(), 40u);
  EXPECT_TRUE(outcomes.count("holdout 1 holdout-12 -1")) << "no holdout result";
  EXPECT_TRUE(outcomes.count("many-conditions 1  69")) << "no 70th condition";
  EXPECT_TRUE(outcomes.count("override 1 variant-2 0")) << "no override";
  EXPECT_TRUE(outcomes.count("multivariate 1 variant-3 0")) << "no large payload";
}

// A result set under a key other than its flag's (not done by the service)
// still says that key.
TEST(FlagResultsTest, AKeyOtherThanTheFlagsIsWrittenAsGiven) {
  absl::StatusOr<std::shared_ptr<const flags::CompiledDefinitions>> definitions =
      flags::CompileDefinitions(DefinitionsForEncoding());
  ASSERT_TRUE(definitions.ok());
  flags::EvaluationContext context;
  context.distinct_id = "someone";
  const FlagEvaluation evaluation =
      flags::EvaluateFlag(**definitions, *(*definitions)->flags()[0], context, absl::UnixEpoch());
  FlagResults results;
  results.SetLocal("another-key", evaluation);
  ExpectEncodesLikeGeneratedCode(results, "");
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
