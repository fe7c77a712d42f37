#include "server/flags/flags_api.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway::flags {
namespace {

using nlohmann::json;

TEST(ParseRemoteEvaluationTest, MapsFlagsReasonsMetadataAndBothPayloadShapes) {
  const json body = json::parse(R"({
    "flags": {
      "a": {"key": "a", "enabled": true, "variant": null,
            "reason": {"code": "condition_match", "condition_index": 0,
                       "description": "Matched condition set 1"},
            "metadata": {"id": 1, "version": 3, "payload": "{\"x\": 1}", "has_experiment": true}},
      "b": {"key": "b", "enabled": true, "variant": "test",
            "reason": {"code": "condition_match", "condition_index": 2},
            "metadata": {"id": 2, "version": 1, "payload": {"raw": [1, 2]}}},
      "c": {"key": "c", "enabled": false, "failed": true,
            "reason": {"code": "timeout"}, "metadata": {"id": 3, "version": 1}}},
    "errorsWhileComputingFlags": true, "requestId": "req-1", "evaluatedAt": 1735787045000})");
  absl::StatusOr<RemoteEvaluation> parsed = ParseRemoteEvaluation(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request_id, "req-1");
  EXPECT_TRUE(parsed->errors_while_computing);
  EXPECT_EQ(parsed->evaluated_at_ms, 1735787045000);
  const RemoteFlag& a = parsed->flags.at("a");
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.variant, "");
  EXPECT_EQ(a.reason_code, "condition_match");
  EXPECT_EQ(a.reason_description, "Matched condition set 1");
  EXPECT_EQ(a.condition_index, 0);
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.version, 3);
  EXPECT_EQ(a.payload, json({{"x", 1}}));  // A JSON string, parsed.
  EXPECT_TRUE(a.has_experiment);
  const RemoteFlag& b = parsed->flags.at("b");
  EXPECT_EQ(b.variant, "test");
  EXPECT_EQ(b.payload, json({{"raw", {1, 2}}}));  // Raw JSON, kept.
  EXPECT_EQ(b.condition_index, 2);
  EXPECT_TRUE(parsed->flags.at("c").failed);
  EXPECT_EQ(parsed->flags.at("c").reason_code, "timeout");
}

TEST(ParseRemoteEvaluationTest, QuotaLimitedWithoutFlagsIsNotAnError) {
  absl::StatusOr<RemoteEvaluation> parsed =
      ParseRemoteEvaluation(json::parse(R"({"quotaLimited": ["feature_flags"]})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->quota_limited);
  EXPECT_TRUE(parsed->flags.empty());
}

// Members of an unexpected type are read as missing, never thrown on
// (nlohmann's value() throws on a mismatch) nor converted out of range.
TEST(ParseRemoteEvaluationTest, MembersOfUnexpectedTypesAreReadAsMissing) {
  const json body = json::parse(R"({
    "flags": {"a": {"enabled": "yes", "failed": 1,
                    "metadata": {"id": 1e300, "version": "2", "has_experiment": "true"}}},
    "errorsWhileComputingFlags": "no", "evaluatedAt": 1e300})");
  absl::StatusOr<RemoteEvaluation> parsed = ParseRemoteEvaluation(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->errors_while_computing);
  EXPECT_EQ(parsed->evaluated_at_ms, 0);
  const RemoteFlag& a = parsed->flags.at("a");
  EXPECT_FALSE(a.enabled);
  EXPECT_FALSE(a.failed);
  EXPECT_EQ(a.id, 0);
  EXPECT_EQ(a.version, 0);
  EXPECT_FALSE(a.has_experiment);
}

TEST(ParseRemoteEvaluationTest, MissingFlagsIsInvalidArgument) {
  EXPECT_EQ(ParseRemoteEvaluation(json::object()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRemoteEvaluation(json::array()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace posthog_gateway::flags
