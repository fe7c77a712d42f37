// openfeature::ContextFromOpenFeature and Resolve: the mapping of
// docs/openfeature.md, case by case, without a server.

#include "server/openfeature/resolution.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/posthog/json_struct.h"

namespace posthog_gateway::openfeature {
namespace {

using nlohmann::json;
using posthog::v1::FlagResult;

FlagResult Result(bool enabled, const std::string& variant, posthog::v1::FlagReasonCode code,
                  const json& payload = nullptr) {
  FlagResult result;
  result.set_key("flag");
  result.set_enabled(enabled);
  result.set_variant(variant);
  result.mutable_reason()->set_code(code);
  result.set_source(posthog::v1::FLAG_DECISION_SOURCE_LOCAL);
  result.set_flag_id(7);
  result.set_flag_version(3);
  if (!payload.is_null()) *result.mutable_payload() = ValueFromJson(payload);
  return result;
}

TEST(ContextFromOpenFeatureTest, SplitsTheContextByConvention) {
  absl::StatusOr<posthog::v1::EvaluationContext> who =
      ContextFromOpenFeature({{"targetingKey", "u-1"},
                              {"plan", "pro"},
                              {"$groups", {{"company", "acme"}, {"project", 42}}},
                              {"$group_properties", {{"company", {{"size", 10}}}}},
                              {"$device_id", "d-1"}});
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->distinct_id(), "u-1");
  EXPECT_EQ(who->device_id(), "d-1");
  EXPECT_EQ(who->groups().at("company"), "acme");
  EXPECT_EQ(who->groups().at("project"), "42");
  EXPECT_EQ(JsonFromStruct(who->group_properties().at("company")), json({{"size", 10}}));
  EXPECT_EQ(JsonFromStruct(who->person_properties()),
            json({{"plan", "pro"}, {"$device_id", "d-1"}}));
}

TEST(ContextFromOpenFeatureTest, NamesWhatIsWrong) {
  struct Case {
    json context;
    ErrorCode code;
  };
  const Case cases[] = {
      {nullptr, ErrorCode::kTargetingKeyMissing},
      {json::object(), ErrorCode::kTargetingKeyMissing},
      {{{"targetingKey", ""}}, ErrorCode::kTargetingKeyMissing},
      {{{"targetingKey", 5}}, ErrorCode::kInvalidContext},
      {json::array(), ErrorCode::kInvalidContext},
      {{{"targetingKey", "u"}, {"$groups", "acme"}}, ErrorCode::kInvalidContext},
      {{{"targetingKey", "u"}, {"$groups", {{"company", json::object()}}}},
       ErrorCode::kInvalidContext},
      {{{"targetingKey", "u"}, {"$group_properties", {{"company", 1}}}},
       ErrorCode::kInvalidContext},
      {{{"targetingKey", "u"}, {"$device_id", json::array()}}, ErrorCode::kInvalidContext},
  };
  for (const Case& c : cases) {
    absl::StatusOr<posthog::v1::EvaluationContext> who = ContextFromOpenFeature(c.context);
    ASSERT_FALSE(who.ok()) << c.context;
    EXPECT_EQ(who.status().code(), absl::StatusCode::kInvalidArgument) << c.context;
    EXPECT_EQ(ContextErrorCode(who.status()), c.code) << c.context;
  }
  EXPECT_EQ(ContextErrorCode(absl::InvalidArgumentError("other")), ErrorCode::kNone);
}

TEST(ResolveTest, ReasonsFollowPostHogsCodes) {
  EXPECT_EQ(
      Resolve(Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH), ValueType::kBoolean)
          .reason,
      "TARGETING_MATCH");
  EXPECT_EQ(
      Resolve(Result(true, "b", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH), ValueType::kBoolean)
          .reason,
      "SPLIT");
  EXPECT_EQ(Resolve(Result(false, "", posthog::v1::FLAG_REASON_CODE_OUT_OF_ROLLOUT_BOUND),
                    ValueType::kBoolean)
                .reason,
            "SPLIT");
  EXPECT_EQ(Resolve(Result(false, "", posthog::v1::FLAG_REASON_CODE_HOLDOUT_CONDITION_VALUE),
                    ValueType::kBoolean)
                .reason,
            "SPLIT");
  EXPECT_EQ(Resolve(Result(true, "", posthog::v1::FLAG_REASON_CODE_SUPER_CONDITION_VALUE),
                    ValueType::kBoolean)
                .reason,
            "TARGETING_MATCH");
  EXPECT_EQ(Resolve(Result(false, "", posthog::v1::FLAG_REASON_CODE_NO_CONDITION_MATCH),
                    ValueType::kBoolean)
                .reason,
            "DEFAULT");
  EXPECT_EQ(
      Resolve(Result(false, "", posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED), ValueType::kBoolean)
          .reason,
      "DISABLED");
}

TEST(ResolveTest, ValuesByType) {
  const FlagResult variant =
      Result(true, "blue", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH, {{"hex", "#00f"}});
  EXPECT_EQ(Resolve(variant, ValueType::kBoolean).value, true);
  EXPECT_EQ(Resolve(variant, ValueType::kString).value, "blue");
  EXPECT_EQ(Resolve(variant, ValueType::kObject).value, json({{"hex", "#00f"}}));
  EXPECT_EQ(Resolve(variant, ValueType::kAny).value, "blue");
  EXPECT_EQ(Resolve(variant, ValueType::kAny).metadata["payload"], R"({"hex":"#00f"})");
  EXPECT_EQ(Resolve(variant, ValueType::kInt).error, ErrorCode::kTypeMismatch);

  const FlagResult number = Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH, 42);
  EXPECT_EQ(Resolve(number, ValueType::kInt).value, 42);
  EXPECT_EQ(Resolve(number, ValueType::kFloat).value, 42.0);
  EXPECT_EQ(Resolve(number, ValueType::kString).error, ErrorCode::kTypeMismatch);
  EXPECT_EQ(
      Resolve(Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH, 1.5), ValueType::kInt)
          .error,
      ErrorCode::kTypeMismatch);
  EXPECT_EQ(Resolve(Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH, 1e300),
                    ValueType::kInt)
                .error,
            ErrorCode::kTypeMismatch);
  EXPECT_EQ(Resolve(Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH, "{\"a\":1}"),
                    ValueType::kObject)
                .value,
            json({{"a", 1}}));
  EXPECT_EQ(Resolve(Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH, "{a"),
                    ValueType::kObject)
                .error,
            ErrorCode::kParseError);

  // Off: the caller's default (no value, no variant), DEFAULT or DISABLED.
  for (auto code : {posthog::v1::FLAG_REASON_CODE_NO_CONDITION_MATCH,
                    posthog::v1::FLAG_REASON_CODE_OUT_OF_ROLLOUT_BOUND}) {
    for (ValueType type : {ValueType::kString, ValueType::kInt, ValueType::kObject}) {
      Resolution off = Resolve(Result(false, "", code), type);
      EXPECT_EQ(off.error, ErrorCode::kNone);
      EXPECT_TRUE(off.value.is_null());
      EXPECT_EQ(off.variant, "");
      EXPECT_EQ(off.reason, "DEFAULT");
    }
  }
  EXPECT_EQ(
      Resolve(Result(false, "", posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED), ValueType::kString)
          .reason,
      "DISABLED");
  // A boolean is always given, with a variant, so providers keep `false`.
  Resolution off =
      Resolve(Result(false, "", posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED), ValueType::kBoolean);
  EXPECT_EQ(off.value, false);
  EXPECT_EQ(off.variant, "false");
}

TEST(ResolveTest, ErrorsAndMetadata) {
  FlagResult missing;
  missing.set_key("nope");
  missing.set_error_code(posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND);
  missing.set_error_message("no flag has the key `nope`");
  Resolution resolution = Resolve(missing, ValueType::kBoolean);
  EXPECT_EQ(resolution.error, ErrorCode::kFlagNotFound);
  EXPECT_EQ(resolution.reason, "ERROR");
  EXPECT_EQ(resolution.error_message, "no flag has the key `nope`");
  missing.set_error_code(posthog::v1::FLAG_ERROR_CODE_GENERAL);
  EXPECT_EQ(Resolve(missing, ValueType::kBoolean).error, ErrorCode::kGeneral);

  FlagResult remote = Result(true, "", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH);
  remote.set_source(posthog::v1::FLAG_DECISION_SOURCE_REMOTE);
  remote.mutable_reason()->set_description("Matched condition set 1");
  EXPECT_EQ(Resolve(remote, ValueType::kBoolean).metadata,
            json({{"flagId", 7},
                  {"flagVersion", 3},
                  {"posthogReason", "Matched condition set 1"},
                  {"decidedBy", "posthog"}}));
  EXPECT_EQ(ErrorCodeName(ErrorCode::kTargetingKeyMissing), "TARGETING_KEY_MISSING");
}

}  // namespace
}  // namespace posthog_gateway::openfeature
