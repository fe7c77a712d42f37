#include "emulator/flag_matcher.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {
namespace {

using nlohmann::json;

// PostHog's vectors, kept in the repository (tests/data/posthog_vectors/,
// a `data` dependency): the test runs in the workspace's runfiles.
json LoadVector(const std::string& name) {
  const std::string path = "tests/data/posthog_vectors/" + name;
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path;
    return json();
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return json::parse(buffer.str());
}

void ExpectConsistency(const std::string& file) {
  json vector = LoadVector(file);
  ASSERT_TRUE(vector.is_object());
  json flag = vector["flag"];
  FlagMatcher matcher({flag}, json::object(), {});
  const json& expected = vector["results"];
  ASSERT_EQ(expected.size(), 1000u);
  int mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    FlagEvaluationInput input;
    input.distinct_id = "distinct_id_" + std::to_string(i);
    std::optional<FlagResult> r = matcher.Evaluate(flag["key"].get<std::string>(), input);
    ASSERT_TRUE(r.has_value());
    if (r->Value() != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << input.distinct_id << ": got " << r->Value().dump() << ", want "
                    << expected[i].dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(FlagMatcherVectorsTest, SimpleFlagMatchesAllThousandIds) {
  ExpectConsistency("flags_simple_consistency.json");
}

TEST(FlagMatcherVectorsTest, MultivariateFlagMatchesAllThousandIds) {
  ExpectConsistency("flags_multivariate_consistency.json");
}

TEST(FlagMatcherVectorsTest, HashMatchesHoldoutGoldenAndDerivedVectors) {
  json vectors = LoadVector("hash_vectors.json");
  ASSERT_TRUE(vectors.is_object());
  const json& golden = vectors["holdout_golden_vectors"]["cases"];
  ASSERT_FALSE(golden.empty());
  for (const json& c : golden) {
    EXPECT_DOUBLE_EQ(Hash(c["prefix"].get<std::string>(), c["identifier"].get<std::string>(),
                          c["salt"].get<std::string>()),
                     c["expected"].get<double>())
        << c["identifier"];
  }
  for (const json& c : vectors["derived_examples"]["cases"]) {
    const std::string prefix = c["flag_key"].get<std::string>() + ".";
    const std::string id = c["distinct_id"].get<std::string>();
    EXPECT_DOUBLE_EQ(Hash(prefix, id, ""), c["rollout_hash"].get<double>());
    EXPECT_DOUBLE_EQ(Hash(prefix, id, "variant"), c["variant_hash"].get<double>());
  }
}

struct PropertyCase {
  const char* name;
  json filter;
  json properties;
  bool expected;
};

class MatchPropertyTest : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(MatchPropertyTest, MatchesLikeTheServer) {
  const PropertyCase& c = GetParam();
  EXPECT_EQ(MatchProperty(c.filter, c.properties), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Operators, MatchPropertyTest,
    ::testing::Values(
        PropertyCase{"ExactIsCaseInsensitive",
                     {{"key", "email"}, {"value", "A@B.C"}},
                     {{"email", "a@b.c"}},
                     true},
        PropertyCase{"ExactListMatchesAnyValue",
                     {{"key", "plan"}, {"operator", "exact"}, {"value", {"pro", "ent"}}},
                     {{"plan", "ent"}},
                     true},
        PropertyCase{"MissingKeyIsNoMatch",
                     {{"key", "plan"}, {"operator", "exact"}, {"value", "pro"}},
                     json::object(),
                     false},
        PropertyCase{"IsNotSetMatchesMissingKey",
                     {{"key", "plan"}, {"operator", "is_not_set"}},
                     json::object(),
                     true},
        PropertyCase{"IsNotDiffers",
                     {{"key", "plan"}, {"operator", "is_not"}, {"value", "pro"}},
                     {{"plan", "free"}},
                     true},
        PropertyCase{"IcontainsFindsSubstring",
                     {{"key", "email"}, {"operator", "icontains"}, {"value", "@EXAMPLE"}},
                     {{"email", "x@example.com"}},
                     true},
        PropertyCase{"GtComparesNumbers",
                     {{"key", "age"}, {"operator", "gt"}, {"value", "9"}},
                     {{"age", 10}},
                     true},
        PropertyCase{"LtComparesNumericStrings",
                     {{"key", "age"}, {"operator", "lt"}, {"value", 9}},
                     {{"age", "10"}},
                     false},
        PropertyCase{"RegexIsUnanchored",
                     {{"key", "email"}, {"operator", "regex"}, {"value", "@ex.*com"}},
                     {{"email", "x@example.com"}},
                     true},
        PropertyCase{"InvalidRegexIsFalseForNotRegex",
                     {{"key", "email"}, {"operator", "not_regex"}, {"value", "(["}},
                     {{"email", "x"}},
                     false},
        PropertyCase{"IsDateBefore",
                     {{"key", "d"}, {"operator", "is_date_before"}, {"value", "2024-01-02"}},
                     {{"d", "2024-01-01T10:00:00Z"}},
                     true},
        PropertyCase{"SemverCaret",
                     {{"key", "v"}, {"operator", "semver_caret"}, {"value", "^1.2.3"}},
                     {{"v", "1.9.0"}},
                     true},
        PropertyCase{"SemverCaretExcludesNextMajor",
                     {{"key", "v"}, {"operator", "semver_caret"}, {"value", "^1.2.3"}},
                     {{"v", "2.0.0"}},
                     false}),
    [](const ::testing::TestParamInfo<PropertyCase>& info) {
      return std::string(info.param.name);
    });

TEST(FlagMatcherTest, DisabledFlagReportsFlagDisabled) {
  json flag = {{"id", 7},
               {"key", "off"},
               {"active", false},
               {"filters", {{"groups", {{{"rollout_percentage", 100}}}}}}};
  FlagMatcher matcher({flag}, json::object(), {});
  FlagEvaluationInput input;
  input.distinct_id = "u";
  FlagResult r = *matcher.Evaluate("off", input);
  EXPECT_FALSE(r.enabled);
  EXPECT_EQ(r.reason_code, "flag_disabled");
  EXPECT_FALSE(r.condition_index.has_value());
}

TEST(FlagMatcherTest, HoldoutComesBeforeReleaseConditions) {
  json flag = {{"id", 1},
               {"key", "f"},
               {"filters",
                {{"holdout", {{"id", 42}, {"exclusion_percentage", 100}}},
                 {"groups", {{{"rollout_percentage", 100}}}}}}};
  FlagMatcher matcher({flag}, json::object(), {});
  FlagEvaluationInput input;
  input.distinct_id = "some_distinct_id";
  FlagResult r = *matcher.Evaluate("f", input);
  EXPECT_TRUE(r.enabled);
  EXPECT_EQ(r.variant, "holdout-42");
  EXPECT_EQ(r.reason_code, "holdout_condition_value");
}

TEST(FlagMatcherTest, HoldoutUsesHoldoutHashAgainstExclusionPercentage) {
  // hash("holdout-", "some_distinct_id") = 0.727..., so 72% excludes it.
  json flag = {{"id", 1},
               {"key", "f"},
               {"filters",
                {{"holdout", {{"id", 42}, {"exclusion_percentage", 72}}},
                 {"groups", {{{"rollout_percentage", 100}}}}}}};
  FlagMatcher matcher({flag}, json::object(), {});
  FlagEvaluationInput input;
  input.distinct_id = "some_distinct_id";
  FlagResult r = *matcher.Evaluate("f", input);
  EXPECT_EQ(r.reason_code, "condition_match");
  EXPECT_FALSE(r.variant.has_value());
}

TEST(FlagMatcherTest, FeatureEnrollmentPropertyDecidesBeforeConditions) {
  json flag = {
      {"id", 1},
      {"key", "early"},
      {"filters", {{"feature_enrollment", true}, {"groups", {{{"rollout_percentage", 0}}}}}}};
  FlagMatcher matcher({flag}, json::object(), {});
  FlagEvaluationInput input;
  input.distinct_id = "u";
  input.person_properties = {{"$feature_enrollment/early", true}};
  FlagResult enrolled = *matcher.Evaluate("early", input);
  EXPECT_TRUE(enrolled.enabled);
  EXPECT_EQ(enrolled.reason_code, "super_condition_value");
  input.person_properties = {{"$feature_enrollment/early", false}};
  EXPECT_FALSE(matcher.Evaluate("early", input)->enabled);
  input.person_properties = json::object();
  EXPECT_EQ(matcher.Evaluate("early", input)->reason_code, "out_of_rollout_bound");
}

TEST(FlagMatcherTest, GroupFlagWithoutGroupIsNoGroupType) {
  json flag = {
      {"id", 1},
      {"key", "g"},
      {"filters",
       {{"aggregation_group_type_index", 0}, {"groups", {{{"rollout_percentage", 100}}}}}}};
  FlagMatcher matcher({flag}, {{"0", "company"}}, {});
  FlagEvaluationInput input;
  input.distinct_id = "u";
  EXPECT_EQ(matcher.Evaluate("g", input)->reason_code, "no_group_type");
  input.groups = {{"company", "acme"}};
  FlagResult r = *matcher.Evaluate("g", input);
  EXPECT_TRUE(r.enabled);
  EXPECT_EQ(r.reason_code, "condition_match");
}

TEST(FlagMatcherTest, DependencyOnAnotherFlagById) {
  json base = {
      {"id", 1},
      {"key", "base"},
      {"filters",
       {{"groups",
         {{{"properties", {{{"key", "plan"}, {"value", "pro"}}}}, {"rollout_percentage", 100}}}}}}};
  json dependent = {
      {"id", 2},
      {"key", "dependent"},
      {"filters",
       {{"groups",
         {{{"properties",
            {{{"key", "1"}, {"type", "flag"}, {"operator", "flag_evaluates_to"}, {"value", true}}}},
           {"rollout_percentage", 100}}}}}}};
  FlagMatcher matcher({base, dependent}, json::object(), {});
  FlagEvaluationInput input;
  input.distinct_id = "u";
  input.person_properties = {{"plan", "pro"}};
  EXPECT_TRUE(matcher.Evaluate("dependent", input)->enabled);
  input.person_properties = {{"plan", "free"}};
  EXPECT_FALSE(matcher.Evaluate("dependent", input)->enabled);
}

TEST(FlagMatcherTest, StaticCohortMatchesByDistinctId) {
  CohortDefinition cohort;
  cohort.id = 5;
  cohort.is_static = true;
  cohort.distinct_ids = {"member"};
  absl::flat_hash_map<int64_t, CohortDefinition> cohorts;
  cohorts[5] = cohort;
  json flag = {{"id", 1},
               {"key", "c"},
               {"filters",
                {{"groups",
                  {{{"properties", {{{"key", "id"}, {"type", "cohort"}, {"value", 5}}}},
                    {"rollout_percentage", 100}}}}}}};
  FlagMatcher matcher({flag}, json::object(), cohorts);
  FlagEvaluationInput input;
  input.distinct_id = "member";
  EXPECT_TRUE(matcher.Evaluate("c", input)->enabled);
  input.distinct_id = "stranger";
  EXPECT_FALSE(matcher.Evaluate("c", input)->enabled);
}

}  // namespace
}  // namespace posthog_emulator
