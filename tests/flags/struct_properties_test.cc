// EvaluateFlags reads the person's properties from the request's Struct one
// key at a time (StructProperties, flags::PropertyLookup) instead of the
// JSON object JsonFromStruct builds. These tests evaluate the same flags
// both ways, with and without an EvaluationCache, for persons whose
// properties take every JSON type and strings that look like numbers,
// booleans, dates and versions, and require the same results.

#include "server/service/struct_properties.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/flags/evaluator.h"
#include "server/flags/values.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {
namespace {

using flags::EvaluationCache;
using flags::EvaluationContext;
using flags::FlagEvaluation;
using nlohmann::json;

const char* const kKeys[] = {"a", "b", "email", "version", "signup", "flag"};

// Values of every kind a property can hold.
std::vector<json> Values() {
  return {
      nullptr,
      true,
      false,
      0,
      30,
      -7,
      3.5,
      1e21,
      // Numbers whose string form the string operators match: Struct holds
      // doubles, and an integral one up to 2^53 is the JSON integer.
      1.0,
      -0.0,
      1e15,
      0.1,
      -2.5e-7,
      9007199254740993.0,
      1e300,
      "1.0",
      "-0",
      "1e+21",
      "",
      "30",
      "3.5",
      " 12 ",
      "true",
      "FALSE",
      "null",
      "ada@example.com",
      "ADA@EXAMPLE.COM",
      "2026-03-01T00:00:00Z",
      "2024-01-01",
      "not a date",
      "1.2.3",
      "v2.0.0-beta",
      "01.2.3",
      "Ünïcödé",
      json::array({"pro", 1, nullptr}),
      json::array(),
      json::object({{"nested", json::array({1, json::object({{"x", "y"}})})}}),
      json::object(),
  };
}

json Filter(const std::string& key, const std::string& op, const json& value,
            bool negation = false) {
  json filter = {{"key", key}, {"type", "person"}, {"operator", op}, {"value", value}};
  if (negation) filter["negation"] = true;
  return filter;
}

// A flag per operator and filter value, on each key, and flags of several
// filters, a cohort and early access enrollment.
json Definitions() {
  const std::vector<std::pair<std::string, json>> filters = {
      {"exact", "30"},
      {"exact", json::array({"pro", "30", "true"})},
      {"exact", true},
      {"exact", "ünïcödé"},
      {"is_not", "ada@example.com"},
      {"is_set", ""},
      {"is_not_set", ""},
      {"icontains", "EXAMPLE"},
      {"not_icontains", "3"},
      {"regex", "^[a-z]+@example\\.com$"},
      {"not_regex", "\\d"},
      {"gt", 18},
      {"gte", "3.5"},
      {"lt", "b"},
      {"lte", 0},
      {"is_date_after", "-365d"},
      {"is_date_before", "2025-01-01"},
      {"semver_gte", "1.2.0"},
      {"semver_lt", "3.0.0"},
      {"semver_tilde", "1.2.0"},
      {"semver_eq", "1.2.3"},
      {"starts_with", "AD"},
      {"ends_with", ".com"},
      // The string forms of numbers and booleans.
      {"exact", "1"},
      {"exact", "0"},
      {"exact", "1e+21"},
      {"exact", json::array({"true", "1.0"})},
      {"icontains", "e+"},
      {"icontains", "TRU"},
      {"regex", "^-?[0-9]+$"},
      {"regex", "\\."},
      {"starts_with", "9007"},
      {"ends_with", "0"},
      {"gt", "1e20"},
      {"lt", "10"},
      {"is_not", "false"},
  };
  json flags = json::array();
  int id = 1;
  for (const char* key : kKeys) {
    for (const auto& [op, value] : filters) {
      flags.push_back(
          {{"key", absl::StrCat(key, "-", op, "-", id)},
           {"id", id++},
           {"active", true},
           {"filters",
            {{"groups",
              {{{"properties", {Filter(key, op, value)}}, {"rollout_percentage", 100}}}}}}});
    }
  }
  flags.push_back({{"key", "several"},
                   {"id", id++},
                   {"active", true},
                   {"filters",
                    {{"groups",
                      {{{"properties", {Filter("a", "is_set", ""), Filter("b", "icontains", "a")}},
                        {"rollout_percentage", 50}},
                       {{"properties", {Filter("email", "regex", "example")}},
                        {"rollout_percentage", 100},
                        {"variant", "second"}}}},
                     {"multivariate",
                      {{"variants",
                        {{{"key", "first"}, {"rollout_percentage", 50}},
                         {{"key", "second"}, {"rollout_percentage", 50}}}}}}}}});
  flags.push_back({{"key", "cohort"},
                   {"id", id++},
                   {"active", true},
                   {"filters",
                    {{"groups",
                      {{{"properties", {{{"key", "id"}, {"type", "cohort"}, {"value", 7}}}},
                        {"rollout_percentage", 100}}}}}}});
  flags.push_back(
      {{"key", "flag"},
       {"id", id++},
       {"active", true},
       {"filters", {{"feature_enrollment", true}, {"groups", {{{"rollout_percentage", 0}}}}}}});
  return {{"flags", flags},
          {"cohorts",
           {{"7",
             {{"type", "OR"},
              {"values",
               {{{"type", "AND"},
                 {"values",
                  {Filter("a", "exact", "30", true), Filter("email", "icontains", "ada")}}}}}}}}}};
}

bool Same(const FlagEvaluation& a, const FlagEvaluation& b) {
  return a.decided == b.decided && a.inconclusive_reason == b.inconclusive_reason &&
         a.enabled == b.enabled && a.variant == b.variant && a.reason == b.reason &&
         a.condition_index == b.condition_index && a.payload == b.payload;
}

TEST(StructPropertiesTest, MatchesAsTheJsonOfTheStruct) {
  absl::StatusOr<std::shared_ptr<const flags::CompiledDefinitions>> definitions =
      flags::CompileDefinitions(Definitions());
  ASSERT_TRUE(definitions.ok()) << definitions.status();
  const std::vector<json> values = Values();
  const absl::Time now = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  int compared = 0;
  int decided = 0;
  int enabled = 0;
  for (size_t person = 0; person < values.size() * 3; ++person) {
    // Each key takes a different value per person; some keys are absent.
    json properties = json::object();
    for (size_t k = 0; k < std::size(kKeys); ++k) {
      const size_t pick = (person + 7 * k) % (values.size() + 2);
      if (pick < values.size()) properties[kKeys[k]] = values[pick];
    }
    properties["$feature_enrollment/flag"] = values[person % values.size()];
    const google::protobuf::Struct request = StructFromJson(properties);

    EvaluationContext from_json;
    from_json.distinct_id = absl::StrCat("person-", person);
    from_json.person_properties = JsonFromStruct(request);
    EvaluationContext from_struct;
    from_struct.distinct_id = from_json.distinct_id;
    from_struct.person_properties = json::object();  // Not read.
    const StructProperties lookup(&request);
    from_struct.person_lookup = &lookup;

    EvaluationCache json_cache;
    EvaluationCache struct_cache;
    for (const auto& flag : (*definitions)->flags()) {
      const FlagEvaluation want = flags::EvaluateFlag(**definitions, *flag, from_json, now);
      const std::string& key = flags::CompiledDefinitions::FlagKey(*flag);
      EXPECT_TRUE(Same(flags::EvaluateFlag(**definitions, *flag, from_struct, now), want))
          << key << " for " << properties.dump();
      EXPECT_TRUE(
          Same(flags::EvaluateFlag(**definitions, *flag, from_struct, now, &struct_cache), want))
          << key << " (cached) for " << properties.dump();
      EXPECT_TRUE(
          Same(flags::EvaluateFlag(**definitions, *flag, from_json, now, &json_cache), want))
          << key << " (JSON, cached) for " << properties.dump();
      ++compared;
      decided += want.decided;
      enabled += want.enabled;
    }
  }
  // Both outcomes of many filters, and the undecided ones (a property not
  // given, not a date), were compared.
  EXPECT_GT(compared, 10000);
  EXPECT_GT(decided, compared / 3);
  EXPECT_GT(enabled, compared / 10);
  EXPECT_LT(decided, compared);
}

TEST(StructPropertiesTest, AbsentAndPresentKeys) {
  const google::protobuf::Struct request = StructFromJson({{"n", 30},
                                                           {"none", nullptr},
                                                           {"list", json::array({1, "x"})},
                                                           {"text", "ada"},
                                                           {"yes", true}});
  const StructProperties lookup(&request);
  flags::PropertyValue value;
  json storage;
  EXPECT_FALSE(lookup.Find("missing", &value, &storage));
  ASSERT_TRUE(lookup.Find("n", &value, &storage));
  ASSERT_NE(value.json(), nullptr);
  EXPECT_EQ(*value.json(), json(30));
  ASSERT_TRUE(lookup.Find("none", &value, &storage));
  EXPECT_TRUE(value.is_null());
  ASSERT_TRUE(lookup.Find("list", &value, &storage));
  ASSERT_NE(value.json(), nullptr);
  EXPECT_EQ(*value.json(), json::array({1, "x"}));
  ASSERT_TRUE(lookup.Find("yes", &value, &storage));
  EXPECT_TRUE(value.is_boolean());
  EXPECT_TRUE(value.boolean());
  // A string is the request's own text, not a copy.
  ASSERT_TRUE(lookup.Find("text", &value, &storage));
  EXPECT_TRUE(value.is_string());
  EXPECT_EQ(value.json(), nullptr);
  EXPECT_EQ(value.string(), "ada");
  EXPECT_EQ(value.string().data(), request.fields().at("text").string_value().data());
}

// What the string operators see of a number or a boolean given in a Struct
// (a double): PostHog's string of the JSON value, pinned here.
TEST(StructPropertiesTest, NumbersAndBooleansMatchAsTheirJson) {
  struct Case {
    json value;
    std::string op;
    json filter;
    bool want;
  };
  const Case cases[] = {
      {1.0, "exact", "1", true},
      {1.0, "exact", "1.0", false},
      {-0.0, "exact", "0", true},
      {-0.0, "exact", "-0", false},
      {30, "exact", "30", true},
      {3.5, "exact", "3.5", true},
      {1e21, "exact", "1e+21", true},
      {1e21, "icontains", "E+2", true},
      {1e15, "exact", "1000000000000000", true},
      {9007199254740992.0, "exact", "9007199254740992", true},
      {9007199254740994.0, "exact", "9007199254740994", false},
      {9007199254740994.0, "exact", "9.007199254740994e+15", true},
      {0.1, "starts_with", "0.1", true},
      {-2.5e-7, "exact", "-2.5e-07", true},
      {true, "exact", "TRUE", true},
      {true, "icontains", "tru", true},
      {false, "is_not", "true", true},
      {"true", "exact", true, true},
      {"True", "exact", true, true},
      {"yes", "exact", true, false},
      {nullptr, "exact", "null", true},
      {nullptr, "gt", 0, false},
      {30, "gt", "4", true},
      {"30", "gt", "4", true},
      {" 30 ", "gt", 4, true},
      {"abc", "gt", "abb", true},
  };
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  for (const Case& c : cases) {
    const json body = {
        {"flags",
         {{{"key", "f"},
           {"id", 1},
           {"active", true},
           {"filters",
            {{"groups",
              {{{"properties", {Filter("p", c.op, c.filter)}}, {"rollout_percentage", 100}}}}}}}}}};
    absl::StatusOr<std::shared_ptr<const flags::CompiledDefinitions>> definitions =
        flags::CompileDefinitions(body);
    ASSERT_TRUE(definitions.ok()) << definitions.status();
    const google::protobuf::Struct request = StructFromJson({{"p", c.value}});
    const StructProperties lookup(&request);
    EvaluationContext context;
    context.distinct_id = "person";
    context.person_lookup = &lookup;
    EvaluationCache cache;
    const flags::CompiledFlag& flag = *(*definitions)->flags()[0];
    for (EvaluationCache* with : {static_cast<EvaluationCache*>(nullptr), &cache}) {
      const FlagEvaluation result = flags::EvaluateFlag(**definitions, flag, context, now, with);
      EXPECT_TRUE(result.decided) << c.value.dump() << " " << c.op << " " << c.filter.dump();
      EXPECT_EQ(result.enabled, c.want) << c.value.dump() << " " << c.op << " " << c.filter.dump();
    }
  }
}

// The same operators on a flags::PropertyValue that views a string and on
// the JSON string of the same text.
TEST(StructPropertiesTest, PropertyValueStringIsTheJsonString) {
  for (const char* text : {"", "true", "TrUe", "false", " 12 ", "1e3", "x", "null", "1.2.3"}) {
    const json as_json = text;
    const flags::PropertyValue view = flags::PropertyValue::String(text);
    const flags::PropertyValue wrapped = flags::PropertyValue::Json(as_json);
    std::string a, b;
    EXPECT_EQ(flags::ValueStr(view, &a), flags::ValueStr(as_json, &b)) << text;
    EXPECT_EQ(flags::IsTruthy(view), flags::IsTruthy(as_json)) << text;
    EXPECT_EQ(flags::IsTruthy(wrapped), flags::IsTruthy(as_json)) << text;
    double x = -1, y = -1;
    EXPECT_EQ(flags::AsNumber(view, &x), flags::AsNumber(as_json, &y)) << text;
    EXPECT_EQ(x, y) << text;
    EXPECT_TRUE(view.is_string());
    EXPECT_TRUE(wrapped.is_string());
    EXPECT_FALSE(view.is_null());
    EXPECT_FALSE(view.is_boolean());
  }
  EXPECT_TRUE(flags::PropertyValue().is_null());
}

}  // namespace
}  // namespace posthog_gateway
