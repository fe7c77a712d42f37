#include "server/flags/flag_json.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway::flags {
namespace {

using nlohmann::json;

// A flag as PostHog's REST API returns it, with fields the API does not type
// at every level.
const char kPostHogFlag[] = R"({
  "id": 17, "key": "checkout", "name": "Checkout redesign", "active": true,
  "deleted": false, "version": 4, "ensure_experience_continuity": false,
  "created_at": "2026-01-15T10:30:00.123456Z", "updated_at": "2026-02-01T08:00:00Z",
  "tags": ["web", "q1"],
  "created_by": {"id": 1, "email": "ada@example.com"},
  "is_simple_flag": false, "rollout_percentage": null,
  "evaluation_runtime": "all", "has_encrypted_payloads": false,
  "experiment_set": [3], "surveys": [], "can_edit": true,
  "filters": {
    "groups": [
      {"properties": [
         {"key": "email", "type": "person", "value": "@x.com", "operator": "icontains"},
         {"key": "id", "type": "cohort", "value": 42, "negation": true},
         {"key": "base", "type": "flag", "value": true, "operator": "flag_evaluates_to",
          "dependency_chain": ["base"], "label": "Base"},
         {"key": "n", "value": [1, 2], "operator": "between", "type": "person"}],
       "rollout_percentage": 50, "variant": null, "description": "Internal",
       "sort_key": "abc"},
      {"properties": [], "rollout_percentage": null, "aggregation_group_type_index": 0}],
    "multivariate": {"variants": [
       {"key": "control", "name": "Control", "rollout_percentage": 50},
       {"key": "test", "rollout_percentage": 50.5, "color": "red"}]},
    "payloads": {"test": "{\"discount\": 10}", "control": "[1,2]"},
    "aggregation_group_type_index": null,
    "holdout": {"id": 9, "exclusion_percentage": 10},
    "early_exit": true
  }
})";

TEST(FlagJsonTest, RoundTripLosesNothing) {
  const json original = json::parse(kPostHogFlag);
  absl::StatusOr<posthog::v1::Flag> flag = FlagFromJson(original);
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(JsonFromFlag(*flag), original) << JsonFromFlag(*flag).dump(2);
}

TEST(FlagJsonTest, TypesTheCommonParts) {
  absl::StatusOr<posthog::v1::Flag> flag = FlagFromJson(json::parse(kPostHogFlag));
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->id(), 17);
  EXPECT_EQ(flag->version(), 4);
  EXPECT_EQ(flag->create_time().seconds(), 1768473000);
  ASSERT_EQ(flag->filters().groups_size(), 2);
  const auto& condition = flag->filters().groups(0);
  EXPECT_EQ(condition.rollout_percentage(), 50);
  ASSERT_EQ(condition.properties_size(), 4);
  EXPECT_EQ(condition.properties(0).operator_(), posthog::v1::PROPERTY_OPERATOR_ICONTAINS);
  EXPECT_TRUE(condition.properties(1).negation());
  EXPECT_EQ(condition.properties(2).operator_(), posthog::v1::PROPERTY_OPERATOR_FLAG_EVALUATES_TO);
  EXPECT_EQ(condition.properties(3).raw_operator(), "between");
  EXPECT_EQ(flag->filters().groups(1).aggregation_group_type_index(), 0);
  ASSERT_EQ(flag->filters().variants_size(), 2);
  EXPECT_EQ(flag->filters().variants(1).rollout_percentage(), 50.5);
  EXPECT_EQ(flag->filters().payloads().at("test").string_value(), "{\"discount\": 10}");
  EXPECT_TRUE(flag->extra().fields().contains("created_by"));
  EXPECT_TRUE(flag->filters().extra().fields().contains("holdout"));
}

TEST(FlagJsonTest, NotAnObjectIsInvalidArgument) {
  EXPECT_EQ(FlagFromJson(json::array()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace posthog_gateway::flags
