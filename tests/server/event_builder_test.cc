#include "server/capture/event_builder.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"

namespace posthog_gateway {
namespace {

using ::nlohmann::json;

const absl::Time kNow = absl::FromUnixMillis(1767323045678);  // 2026-01-02T03:04:05.678Z

// The builders' clock: kNow, for good (nothing here sleeps or advances it).
Clock* FixedClock() {
  static Clock* const clock = new test_support::FakeClock(kNow);
  return clock;
}

template <typename T>
T Parse(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

posthog::v1::Event ParseEvent(const std::string& text) {
  posthog::v1::Event event;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &event)) << text;
  return event;
}

class EventBuilderTest : public ::testing::Test {
 protected:
  EventBuilderTest()
      : builder_(EventLimits{}, "1.2.3", FixedClock(), [] { return 0x0123456789ABCDEFULL; }) {}

  json BuildOne(const posthog::v1::Event& event) {
    absl::StatusOr<std::vector<BuiltEvent>> built =
        builder_.Build({&event}, "event", false, /*disable_geoip=*/true);
    EXPECT_TRUE(built.ok()) << built.status();
    if (!built.ok()) return json();
    return json::parse((*built)[0].json);
  }

  EventBuilder builder_;
};

TEST_F(EventBuilderTest, MakesUuidV7FromTheClockAndRandomness) {
  EXPECT_EQ(builder_.NewUuid(kNow), "019b7ca9-8f2e-7def-8123-456789abcdef");
}

TEST_F(EventBuilderTest, MinimalEventGetsUuidTimestampAndLib) {
  EXPECT_EQ(BuildOne(ParseEvent(R"(event: "order completed" distinct_id: "user-1")")),
            json::parse(R"({"event": "order completed", "distinct_id": "user-1",
                "properties": {"$lib": "posthog-grpc-gateway", "$lib_version": "1.2.3",
                                          "$is_server": true, "$geoip_disable": true},
                "timestamp": "2026-01-02T03:04:05.678Z",
                "uuid": "019b7ca9-8f2e-7def-8123-456789abcdef"})"));
}

TEST_F(EventBuilderTest, EveryOptionMapsToWhatTheSdksSend) {
  posthog::v1::Event event = ParseEvent(R"(
    event: "$pageview" distinct_id: "u"
    properties { fields { key: "amount" value { number_value: 29.5 } }
                 fields { key: "count" value { number_value: 3 } } }
    timestamp { seconds: 1767225600 }
    uuid: "00000000-0000-4000-8000-00000000000A"
    groups { key: "company" value: "acme" }
    set { fields { key: "plan" value { string_value: "pro" } } }
    set_once { fields { key: "first" value { bool_value: true } } }
    personless: true geoip: GEOIP_MODE_DISABLED historical_migration: true)");

  absl::StatusOr<std::vector<BuiltEvent>> built =
      builder_.Build({&event}, "event", false, /*disable_geoip=*/true);

  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_TRUE((*built)[0].historical_migration);
  EXPECT_EQ((*built)[0].uuid, "00000000-0000-4000-8000-00000000000a");
  EXPECT_EQ(json::parse((*built)[0].json), json::parse(R"({
      "event": "$pageview", "distinct_id": "u",
      "properties": {"amount": 29.5, "count": 3,
                     "$lib": "posthog-grpc-gateway", "$lib_version": "1.2.3",
                                          "$is_server": true, "$geoip_disable": true,
                     "$groups": {"company": "acme"}, "$set": {"plan": "pro"},
                     "$set_once": {"first": true},
                     "$process_person_profile": false},
      "timestamp": "2026-01-01T00:00:00.000Z",
      "uuid": "00000000-0000-4000-8000-00000000000a"})"));
}

// The `$geoip_disable` of an event built with the project default
// `disable_geoip`; "absent" when the event has none.
std::string GeoipDisableOf(const std::string& event_text, bool disable_geoip) {
  EventBuilder builder(EventLimits{}, "1", FixedClock(), [] { return 7; });
  posthog::v1::Event event = ParseEvent(event_text);
  absl::StatusOr<std::vector<BuiltEvent>> built =
      builder.Build({&event}, "event", false, disable_geoip);
  EXPECT_TRUE(built.ok()) << built.status();
  if (!built.ok()) return "error";
  const json properties = json::parse((*built)[0].json)["properties"];
  EXPECT_EQ(properties["$is_server"], true);
  return properties.contains("$geoip_disable") ? properties["$geoip_disable"].dump() : "absent";
}

TEST(EventBuilderGeoipTest, OffByDefaultAsInTheServerSdks) {
  EXPECT_EQ(GeoipDisableOf(R"(event: "e" distinct_id: "d")", true), "true");
}

TEST(EventBuilderGeoipTest, AProjectMayTurnItOnByDefault) {
  EXPECT_EQ(GeoipDisableOf(R"(event: "e" distinct_id: "d")", false), "absent");
}

TEST(EventBuilderGeoipTest, TheEventsFieldWinsOverTheProjectDefault) {
  EXPECT_EQ(GeoipDisableOf(R"(event: "e" distinct_id: "d" geoip: GEOIP_MODE_ENABLED)", true),
            "absent");
  EXPECT_EQ(GeoipDisableOf(R"(event: "e" distinct_id: "d" geoip: GEOIP_MODE_DISABLED)", false),
            "true");
}

TEST(EventBuilderGeoipTest, AnEventWithTheUsersIpIsGeolocatedFromIt) {
  const std::string with_ip =
      R"(event: "e" distinct_id: "d"
         properties { fields { key: "$ip" value { string_value: "203.0.113.7" } } })";
  EXPECT_EQ(GeoipDisableOf(with_ip, true), "absent");
  EXPECT_EQ(GeoipDisableOf(with_ip + " geoip: GEOIP_MODE_DISABLED", true), "true");
  EXPECT_EQ(GeoipDisableOf(R"(event: "e" distinct_id: "d"
         properties { fields { key: "$ip" value { string_value: "" } } })",
                           true),
            "true");
}

TEST(EventBuilderGeoipTest, TheCallersOwnPropertyIsKeptUnlessTheFieldSaysOtherwise) {
  const std::string caller_enables =
      R"(event: "e" distinct_id: "d"
         properties { fields { key: "$geoip_disable" value { bool_value: false } } })";
  EXPECT_EQ(GeoipDisableOf(caller_enables, true), "false");
  EXPECT_EQ(GeoipDisableOf(caller_enables + " geoip: GEOIP_MODE_DISABLED", true), "true");
  const std::string caller_disables =
      R"(event: "e" distinct_id: "d"
         properties { fields { key: "$geoip_disable" value { bool_value: true } } })";
  EXPECT_EQ(GeoipDisableOf(caller_disables, false), "true");
  EXPECT_EQ(GeoipDisableOf(caller_disables + " geoip: GEOIP_MODE_ENABLED", false), "false");
}

TEST(EventBuilderGeoipTest, TheCallerCannotUnmarkAServerEvent) {
  EXPECT_EQ(GeoipDisableOf(R"(event: "e" distinct_id: "d"
         properties { fields { key: "$is_server" value { bool_value: false } } })",
                           true),
            "true");  // GeoipDisableOf checks `$is_server: true`.
}

TEST(EventBuilderGeoipTest, TheConventionEventsKeepTheRequestsMode) {
  EXPECT_EQ(IdentifyEvent(Parse<posthog::v1::IdentifyRequest>(
                              R"(distinct_id: "u" geoip: GEOIP_MODE_ENABLED)"))
                .geoip(),
            posthog::v1::GEOIP_MODE_ENABLED);
  EXPECT_EQ(AliasEvent(Parse<posthog::v1::AliasRequest>(
                           R"(distinct_id: "u" alias: "a" geoip: GEOIP_MODE_DISABLED)"))
                .geoip(),
            posthog::v1::GEOIP_MODE_DISABLED);
  EXPECT_EQ(GroupIdentifyEvent(Parse<posthog::v1::GroupIdentifyRequest>(
                                   R"(group_type: "c" group_key: "k" geoip: GEOIP_MODE_ENABLED)"))
                .geoip(),
            posthog::v1::GEOIP_MODE_ENABLED);
  EXPECT_EQ(SetPersonPropertiesEvent(Parse<posthog::v1::SetPersonPropertiesRequest>(
                                         R"(distinct_id: "u" geoip: GEOIP_MODE_ENABLED)"))
                .geoip(),
            posthog::v1::GEOIP_MODE_ENABLED);
}

struct InvalidCase {
  std::string name;
  std::string event;  // text format
  std::vector<std::string> fields;
};

class InvalidEventTest : public ::testing::TestWithParam<InvalidCase> {};

std::string Nested(int depth) {
  std::string text = R"(properties { fields { key: "a" value { )";
  std::string tail = " } } }";
  for (int i = 1; i < depth; ++i) {
    text += R"(struct_value { fields { key: "a" value { )";
    tail = " } } }" + tail;
  }
  return text + "number_value: 1" + tail;
}

TEST_P(InvalidEventTest, IsInvalidArgumentNamingTheFields) {
  EventLimits limits;
  limits.max_event_bytes = 2048;
  limits.max_properties_depth = 4;
  EventBuilder builder(limits, "1", FixedClock(), [] { return 7; });
  posthog::v1::Event good = ParseEvent(R"(event: "ok" distinct_id: "d")");
  posthog::v1::Event bad = ParseEvent(GetParam().event);

  absl::StatusOr<std::vector<BuiltEvent>> built =
      builder.Build({&good, &bad}, "events", true, true);

  ASSERT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);
  absl::optional<absl::Cord> payload =
      built.status().GetPayload("type.googleapis.com/google.rpc.BadRequest");
  ASSERT_TRUE(payload.has_value());
  google::rpc::BadRequest details;
  ASSERT_TRUE(details.ParseFromString(std::string(*payload)));
  std::vector<std::string> fields;
  for (const auto& violation : details.field_violations()) fields.push_back(violation.field());
  EXPECT_EQ(fields, GetParam().fields);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InvalidEventTest,
    ::testing::Values(
        InvalidCase{"EmptyName", R"(distinct_id: "d")", {"events[1].event"}},
        InvalidCase{"EmptyDistinctId", R"(event: "e")", {"events[1].distinct_id"}},
        InvalidCase{"LongDistinctId",
                    "event: \"e\" distinct_id: \"" + std::string(201, 'x') + "\"",
                    {"events[1].distinct_id"}},
        InvalidCase{"Before2000",
                    R"(event: "e" distinct_id: "d" timestamp { seconds: 946684799 })",
                    {"events[1].timestamp"}},
        InvalidCase{"MoreThanADayAhead",
                    R"(event: "e" distinct_id: "d" timestamp { seconds: 1767413046 })",
                    {"events[1].timestamp"}},
        InvalidCase{
            "UnknownGeoipMode", R"(event: "e" distinct_id: "d" geoip: 7)", {"events[1].geoip"}},
        InvalidCase{"BadUuid", R"(event: "e" distinct_id: "d" uuid: "nope")", {"events[1].uuid"}},
        InvalidCase{
            "TooDeep", R"(event: "e" distinct_id: "d" )" + Nested(5), {"events[1].properties"}},
        InvalidCase{
            "TooLarge",
            R"(event: "e" distinct_id: "d" properties { fields { key: "x" value { string_value: ")" +
                std::string(3000, 'x') + R"(" } } })",
            {"events[1].properties"}},
        InvalidCase{"SeveralProblems",
                    R"(uuid: "x")",
                    {"events[1].event", "events[1].distinct_id", "events[1].uuid"}}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.name; });

TEST(EventBuilderLimitsTest, DepthAtTheLimitAndTwoHundredCharactersAreAccepted) {
  EventLimits limits;
  limits.max_properties_depth = 4;
  EventBuilder builder(limits, "1", FixedClock(), [] { return 7; });
  posthog::v1::Event event =
      ParseEvent("event: \"e\" distinct_id: \"" + std::string(200, 'x') + "\" " + Nested(4));

  EXPECT_TRUE(builder.Build({&event}, "event", false, true).ok());
}

struct ConventionCase {
  std::string name;
  std::function<posthog::v1::Event()> make;
  std::string expected;  // the event's JSON without timestamp and uuid
};

class ConventionEventTest : public ::testing::TestWithParam<ConventionCase> {};

TEST_P(ConventionEventTest, ProducesTheSdkShape) {
  EventBuilder builder(EventLimits{}, "1.2.3", FixedClock(), [] { return 7; });
  posthog::v1::Event event = GetParam().make();
  absl::StatusOr<std::vector<BuiltEvent>> built = builder.Build({&event}, "", false, true);
  ASSERT_TRUE(built.ok()) << built.status();
  json got = json::parse((*built)[0].json);
  got.erase("timestamp");
  got.erase("uuid");
  EXPECT_EQ(got, json::parse(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConventionEventTest,
    ::testing::Values(ConventionCase{"Identify",
                                     [] {
                                       return IdentifyEvent(Parse<posthog::v1::IdentifyRequest>(R"(
                           distinct_id: "user-1" anonymous_distinct_id: "anon-9"
                           set { fields { key: "email" value { string_value: "a@b.c" } } }
                           set_once { fields { key: "first" value { string_value: "x" } } })"));
                                     },
                                     R"({"event": "$identify", "distinct_id": "user-1",
                           "properties": {"$set": {"email": "a@b.c"}, "$set_once": {"first": "x"},
                                          "$anon_distinct_id": "anon-9",
                                          "$lib": "posthog-grpc-gateway", "$lib_version": "1.2.3",
                                          "$is_server": true, "$geoip_disable": true}})"},
                      ConventionCase{"Alias",
                                     [] {
                                       return AliasEvent(Parse<posthog::v1::AliasRequest>(
                                           R"(distinct_id: "123" alias: "456")"));
                                     },
                                     R"({"event": "$create_alias", "distinct_id": "123",
                           "properties": {"distinct_id": "123", "alias": "456",
                                          "$lib": "posthog-grpc-gateway", "$lib_version": "1.2.3",
                                          "$is_server": true, "$geoip_disable": true}})"},
                      ConventionCase{"GroupIdentify",
                                     [] {
                                       return GroupIdentifyEvent(
                                           Parse<posthog::v1::GroupIdentifyRequest>(R"(
                           group_type: "company" group_key: "acme"
                           properties { fields { key: "name" value { string_value: "Acme" } } })"));
                                     },
                                     R"({"event": "$groupidentify", "distinct_id": "$company_acme",
                           "properties": {"$group_type": "company", "$group_key": "acme",
                                          "$group_set": {"name": "Acme"},
                                          "$lib": "posthog-grpc-gateway", "$lib_version": "1.2.3",
                                          "$is_server": true, "$geoip_disable": true}})"},
                      ConventionCase{"SetPersonProperties",
                                     [] {
                                       return SetPersonPropertiesEvent(
                                           Parse<posthog::v1::SetPersonPropertiesRequest>(R"(
                           distinct_id: "u" set { fields { key: "plan" value { string_value: "pro" } } }
                           unset: "old" unset: "older")"));
                                     },
                                     R"({"event": "$set", "distinct_id": "u",
                           "properties": {"$set": {"plan": "pro"}, "$unset": ["old", "older"],
                                          "$lib": "posthog-grpc-gateway", "$lib_version": "1.2.3",
                                          "$is_server": true, "$geoip_disable": true}})"}),
    [](const ::testing::TestParamInfo<ConventionCase>& info) { return info.param.name; });

}  // namespace
}  // namespace posthog_gateway
