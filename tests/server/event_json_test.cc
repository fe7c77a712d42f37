#include "server/capture/event_json.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;

constexpr EventJsonExtras kExtras = {"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
                                     "2026-01-02T03:04:05.006Z", "posthog-grpc-gateway", "1.2.3",
                                     true};
// The same without a `$geoip_disable` of the gateway's, and with false.
constexpr EventJsonExtras kExtrasCallersGeoip = {"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
                                                 "2026-01-02T03:04:05.006Z", "posthog-grpc-gateway",
                                                 "1.2.3", std::nullopt};
constexpr EventJsonExtras kExtrasGeoipOn = {"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
                                            "2026-01-02T03:04:05.006Z", "posthog-grpc-gateway",
                                            "1.2.3", false};

// The reference: how EventBuilder built the object before EventJson, with
// nlohmann::json and JsonFromStruct, then dump().
std::string Reference(const posthog::v1::Event& event, const EventJsonExtras& extras) {
  json properties = event.has_properties() ? JsonFromStruct(event.properties()) : json::object();
  properties["$lib"] = std::string(extras.lib);
  properties["$lib_version"] = std::string(extras.lib_version);
  properties["$is_server"] = true;
  if (event.has_set()) properties["$set"] = JsonFromStruct(event.set());
  if (event.has_set_once()) properties["$set_once"] = JsonFromStruct(event.set_once());
  if (!event.groups().empty()) {
    json groups = json::object();
    for (const auto& [type, key] : event.groups()) groups[type] = key;
    properties["$groups"] = std::move(groups);
  }
  if (event.personless()) properties["$process_person_profile"] = false;
  if (extras.geoip_disable.has_value()) properties["$geoip_disable"] = *extras.geoip_disable;
  json out = json::object();
  out["event"] = event.event();
  out["distinct_id"] = event.distinct_id();
  out["properties"] = std::move(properties);
  out["timestamp"] = std::string(extras.timestamp);
  out["uuid"] = std::string(extras.uuid);
  return out.dump();
}

posthog::v1::Event Parse(const std::string& text) {
  posthog::v1::Event event;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &event)) << text;
  return event;
}

class EventJsonTest : public ::testing::TestWithParam<const char*> {};

TEST_P(EventJsonTest, IsByteForByteWhatNlohmannDumps) {
  const posthog::v1::Event event = Parse(GetParam());
  for (const EventJsonExtras& extras : {kExtras, kExtrasCallersGeoip, kExtrasGeoipOn}) {
    absl::StatusOr<std::string> fast = EventJson(event, extras);
    ASSERT_TRUE(fast.ok()) << fast.status();
    EXPECT_EQ(*fast, Reference(event, extras));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Events, EventJsonTest,
    ::testing::Values(R"pb(event: "e" distinct_id: "d")pb",
                      R"pb(event: "checkout"
                           distinct_id: "user-1"
                           properties {
                             fields {
                               key: "plan"
                               value { string_value: "pro" }
                             }
                             fields {
                               key: "amount"
                               value { number_value: 42 }
                             }
                             fields {
                               key: "$current_url"
                               value { string_value: "https://x.test/a?b=c" }
                             }
                           })pb",
                      // The gateway's members win over properties of the same name.
                      R"pb(event: "e"
                           distinct_id: "d"
                           properties {
                             fields {
                               key: "$lib"
                               value { string_value: "spoofed" }
                             }
                             fields {
                               key: "$lib_version"
                               value { number_value: 9 }
                             }
                             fields {
                               key: "$set"
                               value { bool_value: true }
                             }
                             fields {
                               key: "$groups"
                               value { null_value: NULL_VALUE }
                             }
                             fields {
                               key: "$process_person_profile"
                               value { bool_value: true }
                             }
                             fields {
                               key: "$geoip_disable"
                               value { bool_value: false }
                             }
                             fields {
                               key: "$is_server"
                               value { bool_value: false }
                             }
                             fields {
                               key: "zzz"
                               value { bool_value: false }
                             }
                             fields {
                               key: "$a"
                               value { bool_value: true }
                             }
                           }
                           set {
                             fields {
                               key: "email"
                               value { string_value: "a@b.test" }
                             }
                           }
                           set_once {
                             fields {
                               key: "first"
                               value { number_value: 1.5 }
                             }
                           }
                           groups { key: "company" value: "acme" }
                           groups { key: "a-team" value: "x" }
                           personless: true)pb",
                      // Escapes: quotes, backslash, named and other control characters,
                      // DEL, multi-byte UTF-8 (2, 3 and 4 bytes) verbatim.
                      R"pb(event: "q\"uote\\back\x01\x1f\x7f\b\f\n\r\t/"
                           distinct_id: "é€😀"
                           properties {
                             fields {
                               key: "ke\"y\n"
                               value { string_value: "\x00zero" }
                             }
                             fields {
                               key: "é"
                               value { string_value: "" }
                             }
                             fields {
                               key: "E"
                               value { string_value: "\xe2\x80\xa8 line sep" }
                             }
                           })pb",
                      // Numbers: whole ones as integers up to 2^53, others as nlohmann
                      // prints doubles, non-finite as null.
                      R"pb(event: "e"
                           distinct_id: "d"
                           properties {
                             fields {
                               key: "a"
                               value { number_value: 0 }
                             }
                             fields {
                               key: "b"
                               value { number_value: -0.0 }
                             }
                             fields {
                               key: "c"
                               value { number_value: -17 }
                             }
                             fields {
                               key: "d"
                               value { number_value: 0.1 }
                             }
                             fields {
                               key: "e"
                               value { number_value: 1e300 }
                             }
                             fields {
                               key: "f"
                               value { number_value: 9007199254740992 }
                             }
                             fields {
                               key: "g"
                               value { number_value: 9007199254740994 }
                             }
                             fields {
                               key: "h"
                               value { number_value: -9007199254740992 }
                             }
                             fields {
                               key: "i"
                               value { number_value: 2.5e-8 }
                             }
                             fields {
                               key: "j"
                               value { number_value: 123456.789 }
                             }
                             fields {
                               key: "k"
                               value { number_value: inf }
                             }
                             fields {
                               key: "l"
                               value { number_value: -inf }
                             }
                             fields {
                               key: "m"
                               value { number_value: nan }
                             }
                           })pb",
                      // Nesting, lists, null, bools, an empty struct and list, a value
                      // with no kind.
                      R"pb(event: "e"
                           distinct_id: "d"
                           properties {
                             fields {
                               key: "nested"
                               value {
                                 struct_value {
                                   fields {
                                     key: "b"
                                     value {
                                       list_value {
                                         values { number_value: 1 }
                                         values { string_value: "two" }
                                         values { list_value {} }
                                         values { struct_value {} }
                                         values { null_value: NULL_VALUE }
                                         values {}
                                       }
                                     }
                                   }
                                   fields {
                                     key: "a"
                                     value { bool_value: true }
                                   }
                                 }
                               }
                             }
                             fields {
                               key: "empty"
                               value { struct_value {} }
                             }
                             fields {
                               key: "none"
                               value {}
                             }
                           }
                           set {}
                           set_once {})pb"));

TEST(EventJsonRandomTest, MatchesNlohmannOnRandomStructs) {
  std::mt19937_64 random(7);
  const std::string alphabet[] = {"a", "B", "$", "\"", "\\", "\n", "\x01",
                                  "é", "€", "😀", " ",  "z",  "0"};
  auto text = [&] {
    std::string out;
    const int length = static_cast<int>(random() % 6);
    for (int i = 0; i < length; ++i) out += alphabet[random() % std::size(alphabet)];
    return out;
  };
  std::function<void(google::protobuf::Value*, int)> fill = [&](google::protobuf::Value* value,
                                                                int depth) {
    switch (random() % (depth > 0 ? 6 : 4)) {
      case 0:
        value->set_bool_value(random() % 2 == 0);
        break;
      case 1: {
        const double choices[] = {0.0,
                                  1.0,
                                  -3.0,
                                  0.5,
                                  1e21,
                                  1e-7,
                                  3.141592653589793,
                                  static_cast<double>(random() % 100000) / 7.0};
        value->set_number_value(choices[random() % std::size(choices)]);
        break;
      }
      case 2:
        value->set_string_value(text());
        break;
      case 3:
        value->set_null_value(google::protobuf::NULL_VALUE);
        break;
      case 4: {
        auto& fields = *value->mutable_struct_value()->mutable_fields();
        const int count = static_cast<int>(random() % 5);
        for (int i = 0; i < count; ++i) fill(&fields[text()], depth - 1);
        break;
      }
      default: {
        auto* list = value->mutable_list_value();
        const int count = static_cast<int>(random() % 4);
        for (int i = 0; i < count; ++i) fill(list->add_values(), depth - 1);
        break;
      }
    }
  };
  for (int round = 0; round < 300; ++round) {
    posthog::v1::Event event;
    event.set_event(text());
    event.set_distinct_id(text());
    auto& fields = *event.mutable_properties()->mutable_fields();
    const int count = static_cast<int>(random() % 8);
    for (int i = 0; i < count; ++i) fill(&fields[text()], 3);
    if (random() % 2 == 0) fill(&fields["$set"], 1);
    if (random() % 3 == 0) (*event.mutable_set()->mutable_fields())[text()].set_bool_value(true);
    if (random() % 3 == 0) (*event.mutable_groups())[text()] = text();
    event.set_personless(random() % 2 == 0);
    absl::StatusOr<std::string> fast = EventJson(event, kExtras);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_EQ(*fast, Reference(event, kExtras)) << event.DebugString();
  }
}

TEST(EventJsonTest, InvalidUtf8IsInvalidArgument) {
  // Protobuf's parser refuses these; an event built in-process may not.
  const std::string bad[] = {"\xff",    "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                             "\xe2\x82"};
  for (const std::string& text : bad) {
    posthog::v1::Event event;
    event.set_event("e");
    event.set_distinct_id("d");
    (*event.mutable_properties()->mutable_fields())["k"].set_string_value(text);
    absl::StatusOr<std::string> out = EventJson(event, kExtras);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    std::string escaped;
    EXPECT_FALSE(AppendJsonString(text, &escaped));
  }
}

TEST(AppendJsonStringTest, EveryPositionOfALongRunIsChecked) {
  // Plain runs are scanned eight bytes at a time: a byte that needs escaping
  // (or a multi-byte character) at any position of a word, and any length
  // around a word's, is still seen.
  const std::string specials[] = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f", "é",
                                  "€",  "😀",  " "};
  for (size_t length = 0; length < 34; ++length) {
    for (size_t at = 0; at <= length; ++at) {
      for (const std::string& special : specials) {
        std::string text(length, 'x');
        text.insert(at, special);
        std::string out;
        ASSERT_TRUE(AppendJsonString(text, &out));
        ASSERT_EQ(out, json(text).dump()) << length << " " << at;
      }
    }
    std::string bad(length, 'y');
    bad.push_back('\xff');
    std::string out;
    EXPECT_FALSE(AppendJsonString(bad, &out));
  }
}

TEST(AppendJsonStringTest, EscapesAsNlohmann) {
  const std::string cases[] = {"", "plain", "\"\\", std::string("\0\x1f", 2), "\x7f", "€😀"};
  for (const std::string& text : cases) {
    std::string out;
    ASSERT_TRUE(AppendJsonString(text, &out));
    EXPECT_EQ(out, json(text).dump());
  }
}

}  // namespace
}  // namespace posthog_gateway
