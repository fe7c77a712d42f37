#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/posthog/json_struct.h"
#include "server/users/user_json.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;

TEST(JsonStructTest, RoundTripsEveryJsonKind) {
  const json original = json::parse(R"({
    "s": "text", "i": 3, "neg": -7, "f": 2.5, "t": true, "n": null,
    "list": [1, "two", {"three": 3}], "nested": {"deeper": {"x": []}}})");

  const google::protobuf::Struct proto = StructFromJson(original);

  EXPECT_EQ(proto.fields().at("s").string_value(), "text");
  EXPECT_EQ(proto.fields().at("i").number_value(), 3);
  EXPECT_TRUE(proto.fields().at("t").bool_value());
  EXPECT_EQ(proto.fields().at("n").kind_case(), google::protobuf::Value::kNullValue);
  EXPECT_EQ(JsonFromStruct(proto), original);
}

TEST(JsonStructTest, NonObjectGivesEmptyStruct) {
  EXPECT_EQ(StructFromJson(json::array({1, 2})).fields_size(), 0);
}

TEST(JsonStructTest, NonFiniteNumbersBecomeNull) {
  google::protobuf::Value value;
  value.set_number_value(std::numeric_limits<double>::infinity());
  EXPECT_TRUE(JsonFromValue(value).is_null());
}

// The shape PostHog's UserSerializer sends (docs/posthog-api.md section 4).
constexpr char kUserJson[] = R"({
  "date_joined": "2024-03-04T05:06:07.250000Z",
  "uuid": "0190c1a2-0000-7000-8000-000000000001",
  "distinct_id": "ZC3iKqX0yM1Wq9c",
  "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
  "pending_email": null, "is_email_verified": true,
  "notification_settings": {"plugin_disabled": true},
  "is_staff": false, "role_at_organization": "engineering", "is_2fa_enabled": false,
  "team": {"id": 1, "uuid": "0190c1a2-0000-7000-8000-0000000000aa",
           "organization": "0190c1a2-0000-7000-8000-0000000000bb",
           "api_token": "phc_public_token", "name": "Demo", "timezone": "UTC",
           "is_demo": false, "ingested_event": true},
  "organization": {"id": "0190c1a2-0000-7000-8000-0000000000bb", "name": "Acme",
                   "slug": "acme", "membership_level": 15,
                   "teams": [{"id": 1, "name": "Demo"}, {"id": 2, "name": "Staging"}]},
  "organizations": [{"id": "0190c1a2-0000-7000-8000-0000000000bb", "name": "Acme",
                     "slug": "acme", "membership_level": 15}],
  "theme_mode": "dark"
})";

TEST(UserJsonTest, ConvertsModelledFieldsAndKeepsTheRestInExtra) {
  absl::StatusOr<posthog::v1::User> user = UserFromJson(json::parse(kUserJson));

  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uuid(), "0190c1a2-0000-7000-8000-000000000001");
  EXPECT_EQ(user->distinct_id(), "ZC3iKqX0yM1Wq9c");
  EXPECT_EQ(user->first_name(), "Ada");
  EXPECT_EQ(user->last_name(), "Lovelace");
  EXPECT_EQ(user->email(), "ada@example.com");
  EXPECT_TRUE(user->is_email_verified());
  EXPECT_EQ(user->role_at_organization(), "engineering");
  EXPECT_EQ(user->join_time().seconds(), 1709528767);
  EXPECT_EQ(user->join_time().nanos(), 250000000);
  EXPECT_EQ(user->team().id(), 1);
  EXPECT_EQ(user->team().name(), "Demo");
  EXPECT_EQ(user->team().organization_id(), "0190c1a2-0000-7000-8000-0000000000bb");
  EXPECT_TRUE(user->team().ingested_event());
  EXPECT_EQ(user->organization().name(), "Acme");
  EXPECT_EQ(user->organization().membership_level(), 15);
  ASSERT_EQ(user->organization().teams_size(), 2);
  EXPECT_EQ(user->organization().teams(1).name(), "Staging");
  ASSERT_EQ(user->organizations_size(), 1);
  EXPECT_EQ(user->organizations(0).slug(), "acme");
  EXPECT_EQ(user->extra().fields().at("theme_mode").string_value(), "dark");
  EXPECT_TRUE(user->extra().fields().contains("notification_settings"));
  EXPECT_FALSE(user->extra().fields().contains("team"));
}

TEST(UserJsonTest, WrongTypeNamesTheField) {
  absl::StatusOr<posthog::v1::User> user = UserFromJson(json::parse(R"({"team": {"id": "one"}})"));

  EXPECT_EQ(user.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(user.status().message()), ::testing::HasSubstr("user.team.id"));
}

TEST(UserJsonTest, BadDateIsAnError) {
  EXPECT_FALSE(UserFromJson(json::parse(R"({"date_joined": "yesterday"})")).ok());
}

TEST(UserJsonTest, NullsAreDefaults) {
  absl::StatusOr<posthog::v1::User> user =
      UserFromJson(json::parse(R"({"email": null, "team": null, "is_staff": null})"));

  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->email(), "");
  EXPECT_FALSE(user->has_team());
}

}  // namespace
}  // namespace posthog_gateway
