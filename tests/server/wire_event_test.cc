// The wire path (EventBuilder::BuildWire, WireEventJson) against the
// reference it must match byte for byte: the event parsed by protobuf and
// built by EventBuilder::Build (EventJson). Every event is serialized, built
// both ways by builders with the same clock and randomness, and compared;
// what the wire path declines must be something Build decides (an error, or
// a case it leaves to protobuf's parser).

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "server/capture/event_builder.h"
#include "server/capture/event_json.h"
#include "tests/fakes/fake_clock.h"

namespace posthog_gateway {
namespace {

const absl::Time kNow = absl::FromUnixMillis(1767323045678);  // 2026-01-02T03:04:05.678Z

Clock* FixedClock() {
  static Clock* const clock = new test_support::FakeClock(kNow);
  return clock;
}

// A builder whose randomness restarts from the same sequence, so that two
// of them give the same uuids.
EventBuilder MakeBuilder(EventLimits limits = {}) {
  auto counter = std::make_shared<uint64_t>(0x0123456789ABCDEFULL);
  return EventBuilder(limits, "1.2.3", FixedClock(), [counter] {
    *counter = *counter * 6364136223846793005ULL + 1442695040888963407ULL;
    return *counter;
  });
}

posthog::v1::Event ParseText(const std::string& text) {
  posthog::v1::Event event;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &event)) << text;
  return event;
}

// Serializes with the map entries in the order the maps hold them, or
// sorted by key (`deterministic`): the wire path must not depend on it.
std::string Serialize(const posthog::v1::Event& event, bool deterministic) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(deterministic);
  EXPECT_TRUE(event.SerializeToCodedStream(&coded));
  coded.Trim();
  return bytes;
}

// Builds `bytes` both ways; expects the wire path to take it (when
// `must_take`) and, whenever it does, to match Build.
void ExpectSameAsBuild(const std::string& bytes, bool disable_geoip, bool must_take,
                       EventLimits limits = {}) {
  const EventBuilder wire_builder = MakeBuilder(limits);
  const EventBuilder reference_builder = MakeBuilder(limits);
  std::optional<std::vector<BuiltEvent>> wire =
      wire_builder.BuildWire({bytes}, disable_geoip, /*with_uuids=*/true);
  posthog::v1::Event parsed;
  const bool parses = parsed.ParseFromString(bytes);
  if (must_take) {
    ASSERT_TRUE(wire.has_value()) << parsed.DebugString();
  }
  if (!wire.has_value()) return;
  ASSERT_TRUE(parses) << "the wire path took bytes protobuf refuses";
  absl::StatusOr<std::vector<BuiltEvent>> reference =
      reference_builder.Build({&parsed}, "events", true, disable_geoip);
  ASSERT_TRUE(reference.ok()) << "the wire path took an event Build refuses: " << reference.status()
                              << "\n"
                              << parsed.DebugString();
  ASSERT_EQ(wire->size(), 1u);
  EXPECT_EQ((*wire)[0].json, (*reference)[0].json) << parsed.DebugString();
  EXPECT_EQ((*wire)[0].uuid, (*reference)[0].uuid);
  EXPECT_EQ((*wire)[0].historical_migration, (*reference)[0].historical_migration);

  // Written straight into spool records: the same event.
  const EventBuilder records_builder = MakeBuilder(limits);
  RecordBlock block;
  std::vector<std::string> uuids;
  ASSERT_TRUE(records_builder.BuildWireRecords({bytes}, disable_geoip, "demo", &block, &uuids));
  ASSERT_EQ(block.size(), 1u);
  EXPECT_EQ(block.json(0), (*reference)[0].json);
  EXPECT_EQ(block.project(0), "demo");
  EXPECT_EQ(block.historical_migration(0), (*reference)[0].historical_migration);
  EXPECT_EQ(uuids, std::vector<std::string>{(*reference)[0].uuid});
}

// Expects the wire path to decline `bytes` and leave them to Build.
void ExpectDeclined(const std::string& bytes, EventLimits limits = {}) {
  const EventBuilder builder = MakeBuilder(limits);
  EXPECT_FALSE(builder.BuildWire({bytes}, true, true).has_value());
  RecordBlock block;
  EXPECT_FALSE(builder.BuildWireRecords({bytes}, true, "demo", &block, nullptr));
}

class WireEventTest : public ::testing::TestWithParam<const char*> {};

TEST_P(WireEventTest, IsByteForByteWhatBuildWrites) {
  const posthog::v1::Event event = ParseText(GetParam());
  for (bool deterministic : {false, true}) {
    for (bool disable_geoip : {true, false}) {
      ExpectSameAsBuild(Serialize(event, deterministic), disable_geoip, /*must_take=*/true);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Events, WireEventTest,
    ::testing::Values(
        R"pb(event: "e" distinct_id: "d")pb",
        // The benchmark's event.
        R"pb(event: "bench event"
             distinct_id: "user-42"
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
                 value { string_value: "https://example.com/checkout" }
               }
             })pb",
        // Every field of an Event.
        R"pb(event: "checkout"
             distinct_id: "user-1"
             properties {
               fields {
                 key: "z"
                 value { string_value: "last" }
               }
               fields {
                 key: "$set_once_x"
                 value { bool_value: false }
               }
               fields {
                 key: "$groupsx"
                 value { number_value: 1 }
               }
               fields {
                 key: "$lib_versio"
                 value { string_value: "caller's" }
               }
             }
             timestamp { seconds: 1767323000 nanos: 123456789 }
             uuid: "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B"
             groups { key: "company" value: "acme" }
             groups { key: "project" value: "p\"1" }
             groups { key: "" value: "" }
             set {
               fields {
                 key: "name"
                 value { string_value: "Ann" }
               }
             }
             set_once {
               fields {
                 key: "first"
                 value { number_value: 1.5 }
               }
             }
             personless: true
             historical_migration: true
             geoip: GEOIP_MODE_ENABLED)pb",
        // GeoIP: each mode, the caller's own `$geoip_disable`, `$ip` empty
        // and not.
        R"pb(event: "e" distinct_id: "d" geoip: GEOIP_MODE_DISABLED)pb",
        R"pb(event: "e"
             distinct_id: "d"
             geoip: GEOIP_MODE_ENABLED
             properties {
               fields {
                 key: "$ip"
                 value { string_value: "1.2.3.4" }
               }
             })pb",
        R"pb(event: "e"
             distinct_id: "d"
             properties {
               fields {
                 key: "$ip"
                 value { string_value: "1.2.3.4" }
               }
             })pb",
        R"pb(event: "e"
             distinct_id: "d"
             properties {
               fields {
                 key: "$ip"
                 value { string_value: "" }
               }
             })pb",
        R"pb(event: "e"
             distinct_id: "d"
             properties {
               fields {
                 key: "$ip"
                 value { number_value: 1 }
               }
             })pb",
        R"pb(event: "e"
             distinct_id: "d"
             properties {
               fields {
                 key: "$geoip_disable"
                 value { bool_value: false }
               }
             })pb",
        // Unicode and every escape, in values, keys and the event's strings.
        R"pb(event: "ünïcödé €😀 \"quoted\" back\\slash"
             distinct_id: "tab\tnew\nline\r\x01\x1f\x7f"
             properties {
               fields {
                 key: "ключ \b\f"
                 value { string_value: "日本語 \342\200\250 😀 \x00 end" }
               }
               fields {
                 key: ""
                 value { string_value: "" }
               }
             })pb",
        // Numbers.
        R"pb(event: "e"
             distinct_id: "d"
             properties {
               fields {
                 key: "a"
                 value { number_value: 1e21 }
               }
               fields {
                 key: "b"
                 value { number_value: -0.0 }
               }
               fields {
                 key: "c"
                 value { number_value: nan }
               }
               fields {
                 key: "d"
                 value { number_value: inf }
               }
               fields {
                 key: "e"
                 value { number_value: -inf }
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
                 value { number_value: 0.1 }
               }
               fields {
                 key: "i"
                 value { number_value: 2.5e-8 }
               }
               fields {
                 key: "j"
                 value { number_value: -123456.789 }
               }
               fields {
                 key: "k"
                 value { number_value: 1e-320 }
               }
             })pb",
        // Nesting, lists, null, an empty struct and list, a value with no
        // kind, empty set and set_once.
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
                           values {
                             list_value {
                               values {
                                 struct_value {
                                   fields {
                                     key: "deep"
                                     value { bool_value: true }
                                   }
                                 }
                               }
                             }
                           }
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
             set_once {})pb",
        // A caller's `$set` kept when the event has no set of its own.
        R"pb(event: "e"
             distinct_id: "d"
             properties {
               fields {
                 key: "$set"
                 value { struct_value {} }
               }
               fields {
                 key: "$groups"
                 value { string_value: "x" }
               }
             })pb",
        // distinct_id of 200 characters, not bytes.
        R"pb(event: "e"
             distinct_id: "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé")pb"));

TEST(WireEventTest, BigEventsMatch) {
  posthog::v1::Event event = ParseText(R"pb(event: "big" distinct_id: "d")pb");
  auto& fields = *event.mutable_properties()->mutable_fields();
  for (int i = 0; i < 2000; ++i) {
    fields["key-" + std::to_string(i)].set_string_value(std::string(100 + i % 7, 'a' + i % 26));
  }
  ExpectSameAsBuild(Serialize(event, false), true, /*must_take=*/true);
}

TEST(WireEventTest, MatchesBuildOnRandomEvents) {
  std::mt19937_64 random(11);
  const std::string alphabet[] = {"a", "B", "$", "\"", "\\",  "\n",   "\x01", "é", "€",
                                  "😀", " ", "z", "0",  "$ip", "$set", "\x7f", "\t"};
  auto text = [&] {
    std::string out;
    const int length = static_cast<int>(random() % 6);
    for (int i = 0; i < length; ++i) out += alphabet[random() % std::size(alphabet)];
    return out;
  };
  const double numbers[] = {0.0,   -0.0,    1.0,
                            -3.0,  0.5,     1e21,
                            1e-7,  3.14159, std::numeric_limits<double>::quiet_NaN(),
                            1e308, -1e22,   4503599627370497.0};
  std::function<void(google::protobuf::Value*, int)> fill = [&](google::protobuf::Value* value,
                                                                int depth) {
    switch (random() % (depth > 0 ? 7 : 5)) {
      case 0:
        value->set_bool_value(random() % 2 == 0);
        break;
      case 1:
        value->set_number_value(random() % 2 == 0 ? numbers[random() % std::size(numbers)]
                                                  : static_cast<double>(random() % 100000) / 7.0);
        break;
      case 2:
        value->set_string_value(text());
        break;
      case 3:
        value->set_null_value(google::protobuf::NULL_VALUE);
        break;
      case 4:
        break;  // No kind.
      case 5: {
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
  int taken = 0;
  for (int round = 0; round < 1000; ++round) {
    posthog::v1::Event event;
    event.set_event(random() % 10 == 0 ? "" : "e" + text());
    event.set_distinct_id(random() % 10 == 0 ? "" : "d" + text());
    auto& fields = *event.mutable_properties()->mutable_fields();
    const int count = static_cast<int>(random() % 8);
    for (int i = 0; i < count; ++i) fill(&fields[text()], 4);
    if (random() % 4 == 0) fill(&fields["$ip"], 0);
    if (random() % 4 == 0) fill(&fields["$geoip_disable"], 0);
    if (random() % 3 == 0) fill(&(*event.mutable_set()->mutable_fields())[text()], 2);
    if (random() % 3 == 0) event.mutable_set_once();
    if (random() % 3 == 0) (*event.mutable_groups())[text()] = text();
    if (random() % 3 == 0) event.mutable_timestamp()->set_seconds(1767323045 - random() % 100000);
    if (random() % 5 == 0) event.set_uuid("0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2b");
    event.set_personless(random() % 2 == 0);
    event.set_historical_migration(random() % 2 == 0);
    event.set_geoip(static_cast<posthog::v1::GeoipMode>(random() % 3));
    const bool valid = !event.event().empty() && !event.distinct_id().empty();
    const bool disable_geoip = random() % 2 == 0;
    const std::string bytes = Serialize(event, random() % 2 == 0);
    ASSERT_NO_FATAL_FAILURE(ExpectSameAsBuild(bytes, disable_geoip, /*must_take=*/false));
    const EventBuilder builder = MakeBuilder();
    const bool took = builder.BuildWire({bytes}, disable_geoip, false).has_value();
    // Every valid event is taken unless a caller's property is a member the
    // gateway replaces (left to Build).
    const bool replaced = (fields.count("$set") > 0 && event.has_set()) ||
                          (fields.count("$geoip_disable") > 0 &&
                           event.geoip() != posthog::v1::GEOIP_MODE_UNSPECIFIED);
    EXPECT_EQ(took, valid && !replaced) << event.DebugString();
    taken += took;
  }
  EXPECT_GT(taken, 500);
}

// Hand-made encodings: each appends fields to a valid event's bytes.
std::string Tag(int field, int type) {
  return std::string(1, static_cast<char>(field << 3 | type));
}
std::string Length(const std::string& payload) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteVarint32(static_cast<uint32_t>(payload.size()));
  coded.Trim();
  return out + payload;
}
std::string StringField(int field, const std::string& value) {
  return Tag(field, 2) + Length(value);
}
// A Struct's entry `key: value` (an encoded Value).
std::string Entry(const std::string& key, const std::string& value) {
  return StringField(1, StringField(1, key) + StringField(2, value));
}
std::string StringValue(const std::string& text) { return StringField(3, text); }

const std::string kValidEvent = StringField(1, "e") + StringField(2, "d");

TEST(WireEventTest, EncodingsProtobufAcceptsAreTakenAsItReadsThem) {
  const std::string cases[] = {
      // A bool of 2, a null of 5 (an open enum).
      kValidEvent + StringField(3, Entry("b", Tag(4, 0) + '\2') + Entry("n", Tag(1, 0) + '\5')),
      // Map entries without a value, without a key, value before key.
      kValidEvent + StringField(3, StringField(1, StringField(1, "k"))),
      kValidEvent + StringField(3, StringField(1, StringField(2, StringValue("v")))),
      kValidEvent +
          StringField(3, StringField(1, StringField(2, StringValue("v")) + StringField(1, "k"))),
      // The event's fields out of order.
      StringField(3, Entry("k", StringValue("v"))) + StringField(2, "d") + StringField(1, "e"),
      // Negative nanos (a 10-byte varint), a non-minimal varint for geoip.
      kValidEvent + StringField(4, Tag(1, 0) + "\xf8\xea\xdc\xca\x06" + Tag(2, 0) +
                                       std::string(9, '\xff') + '\x01'),
      kValidEvent + Tag(12, 0) + std::string("\x81\x00", 2),
  };
  for (const std::string& bytes : cases) {
    posthog::v1::Event parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    ExpectSameAsBuild(bytes, true, /*must_take=*/true);
  }
}

TEST(WireEventDeclinesTest, WhatProtobufMergesOrKeepsLast) {
  // A key twice in properties (protobuf keeps the last).
  const std::string twice =
      kValidEvent + StringField(3, Entry("k", StringValue("1")) + Entry("k", StringValue("2")));
  ExpectDeclined(twice);
  ExpectSameAsBuild(twice, true, /*must_take=*/false);
  // properties twice (merged), the event's name twice (the last kept).
  ExpectDeclined(kValidEvent + StringField(3, Entry("a", StringValue("1"))) +
                 StringField(3, Entry("b", StringValue("2"))));
  ExpectDeclined(kValidEvent + StringField(1, "again"));
  // A Value with two kinds (the last wins).
  ExpectDeclined(kValidEvent + StringField(3, Entry("k", StringValue("1") + Tag(4, 0) + '\1')));
  // A groups key twice.
  ExpectDeclined(kValidEvent + StringField(6, StringField(1, "g") + StringField(2, "1")) +
                 StringField(6, StringField(1, "g") + StringField(2, "2")));
}

TEST(WireEventDeclinesTest, UnknownFieldsAndWrongWireTypes) {
  ExpectDeclined(kValidEvent + Tag(10, 0) + '\1');                             // Reserved.
  ExpectDeclined(kValidEvent + StringField(15, "x"));                          // Unknown.
  ExpectDeclined(kValidEvent + Tag(9, 2) + Length("x"));                       // personless as LEN.
  ExpectDeclined(kValidEvent + StringField(3, Entry("k", Tag(2, 0) + '\1')));  // A varint number.
  ExpectDeclined(kValidEvent + StringField(3, StringField(2, "x")));  // Not a Struct's field.
}

TEST(WireEventDeclinesTest, MalformedBytes) {
  ExpectDeclined(kValidEvent.substr(0, kValidEvent.size() - 1));
  ExpectDeclined(kValidEvent + Tag(3, 2) +
                 "\x05"
                 "ab");                     // Length past the end.
  ExpectDeclined(kValidEvent + Tag(9, 0));  // A varint missing.
  ExpectDeclined(kValidEvent + Tag(9, 0) + std::string(11, '\xff'));
  ExpectDeclined(kValidEvent + Tag(3, 3));  // A group.
}

// protobuf reads a tag or a length in at most 5 bytes (ReadTag, ReadSize in
// parse_context.h) and refuses a longer encoding, though a VARINT value may
// take 10: the wire path must refuse the same bytes, here and in every
// nested message (a Struct's entry, a Value, a Timestamp).
TEST(WireEventDeclinesTest, TagsAndLengthsLongerThanProtobufReads) {
  const std::string tag6("\x8a\x80\x80\x80\x80\x00", 6);     // Field 1, LEN.
  const std::string length6("\x81\x80\x80\x80\x80\x00", 6);  // 1.
  const std::string refused[] = {
      tag6 + Length("e") + StringField(2, "d"),
      Tag(1, 2) + length6 + "e" + StringField(2, "d"),
      kValidEvent + Tag(3, 2) + Length(Tag(1, 2) + Length(Tag(1, 2) + length6 + "k")),
      // bool_value's tag; Timestamp.seconds' tag (2026-01-02).
      kValidEvent + StringField(3, Entry("k", std::string("\xa0\x80\x80\x80\x80\x00", 6) + '\1')),
      kValidEvent +
          StringField(4, std::string("\x88\x80\x80\x80\x80\x00", 6) + "\xf8\xea\xdc\xca\x06"),
  };
  for (const std::string& bytes : refused) {
    posthog::v1::Event parsed;
    EXPECT_FALSE(parsed.ParseFromString(bytes));
    ExpectDeclined(bytes);
  }
  // 5 bytes (not minimal) protobuf takes, and so does the wire path.
  const std::string taken[] = {
      std::string("\x8a\x80\x80\x80\x00", 5) + Length("e") + StringField(2, "d"),
      Tag(1, 2) + std::string("\x81\x80\x80\x80\x00", 5) + "e" + StringField(2, "d"),
  };
  for (const std::string& bytes : taken) {
    posthog::v1::Event parsed;
    EXPECT_TRUE(parsed.ParseFromString(bytes));
    ExpectSameAsBuild(bytes, true, /*must_take=*/true);
  }
}

// The stream's scan of a whole message reads its fields as protobuf does,
// and declines what protobuf refuses (the 5-byte tag and length limit too).
TEST(WireCaptureRequestTest, ScanMatchesProtobufOrDeclines) {
  const std::string event = kValidEvent;
  const std::string taken[] = {
      StringField(1, "proj") + StringField(2, event) + Tag(3, 0) + '\1' + StringField(2, event),
      StringField(2, event),
      Tag(3, 0) + std::string("\x82\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10),  // 2 + 2^63.
      Tag(1, 2) + std::string("\x81\x80\x80\x80\x00", 5) + "p",
  };
  for (const std::string& bytes : taken) {
    posthog::v1::StreamCaptureEventsRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    WireCaptureRequest request;
    ASSERT_TRUE(ScanCaptureRequest(bytes, &request));
    EXPECT_EQ(request.project, parsed.project());
    EXPECT_EQ(request.ack_mode, static_cast<int32_t>(parsed.ack_mode()));
    EXPECT_EQ(request.events.size(), static_cast<size_t>(parsed.events_size()));
  }
  const std::string declined[] = {
      Tag(1, 2) + std::string("\x81\x80\x80\x80\x80\x00", 6) + "p",  // Refused by protobuf.
      std::string("\x92\x80\x80\x80\x80\x00", 6) + Length(event),    // Refused by protobuf.
      StringField(1, "a") + StringField(1, "b"),                     // Kept last.
      StringField(1, "\xff"),                                        // Refused by protobuf.
      StringField(4, "x"),                                           // Unknown.
  };
  for (const std::string& bytes : declined) {
    WireCaptureRequest request;
    EXPECT_FALSE(ScanCaptureRequest(bytes, &request));
  }
}

// Unary CaptureEvent's request both ways: the wire side is what the service
// does (ScanCaptureEventRequest, then BuildWire on the one event); the
// reference parses the CaptureEventRequest and builds its event with Build,
// as the parsed path does. Whatever the wire side takes must parse to the
// same project, ack_mode and event, built byte for byte the same.
void ExpectCaptureEventSameAsParsed(const std::string& bytes, bool must_take) {
  WireCaptureRequest request;
  const bool scanned = ScanCaptureEventRequest(bytes, &request);
  posthog::v1::CaptureEventRequest parsed;
  const bool parses = parsed.ParseFromString(bytes);
  if (must_take) {
    ASSERT_TRUE(scanned);
  }
  if (!scanned) return;
  ASSERT_TRUE(parses) << "the scan took bytes protobuf refuses";
  EXPECT_EQ(request.project, parsed.project());
  EXPECT_EQ(request.ack_mode, static_cast<int32_t>(parsed.ack_mode()));
  ASSERT_EQ(request.events.size(), 1u);
  for (bool disable_geoip : {true, false}) {
    const EventBuilder wire_builder = MakeBuilder();
    const EventBuilder reference_builder = MakeBuilder();
    std::optional<std::vector<BuiltEvent>> wire =
        wire_builder.BuildWire(request.events, disable_geoip, /*with_uuids=*/true);
    absl::StatusOr<std::vector<BuiltEvent>> reference =
        reference_builder.Build({&parsed.event()}, "event", /*indexed=*/false, disable_geoip);
    if (must_take) {
      ASSERT_TRUE(wire.has_value()) << parsed.DebugString();
    }
    if (!wire.has_value()) continue;
    ASSERT_TRUE(reference.ok()) << reference.status() << "\n" << parsed.DebugString();
    ASSERT_EQ(wire->size(), 1u);
    EXPECT_EQ((*wire)[0].json, (*reference)[0].json);
    EXPECT_EQ((*wire)[0].uuid, (*reference)[0].uuid);
    EXPECT_EQ((*wire)[0].historical_migration, (*reference)[0].historical_migration);
  }
}

TEST(WireCaptureEventRequestTest, TakenShapesMatchTheParsedPath) {
  posthog::v1::CaptureEventRequest full;
  full.set_project("demo");
  full.set_ack_mode(posthog::v1::ACK_MODE_DURABLE);
  *full.mutable_event() = ParseText(R"pb(event: "bench event"
                                         distinct_id: "user-42"
                                         uuid: "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B"
                                         timestamp { seconds: 1767323000 nanos: 5000000 }
                                         historical_migration: true
                                         groups { key: "company" value: "acme" }
                                         properties {
                                           fields {
                                             key: "plan"
                                             value { string_value: "pro" }
                                           }
                                           fields {
                                             key: "amount"
                                             value { number_value: 42 }
                                           }
                                         })pb");
  const std::string event = kValidEvent;
  const std::string taken[] = {
      full.SerializeAsString(),
      StringField(2, event),  // The default project and mode.
      StringField(1, "proj") + StringField(2, event) + Tag(3, 0) + '\1',
      // Out of order; an ack_mode in 10 bytes (protobuf keeps the low 32
      // bits: 2^63 + 1 is 1); an unknown mode (an open enum).
      Tag(3, 0) + std::string("\x81\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10) +
          StringField(2, event) + StringField(1, "p"),
      StringField(2, event) + Tag(3, 0) + '\x07',
      // Project and event with a length in 5 bytes (not minimal).
      Tag(1, 2) + std::string("\x81\x80\x80\x80\x00", 5) + "p" + Tag(2, 2) +
          std::string("\x86\x80\x80\x80\x00", 5) + event,
  };
  ASSERT_EQ(event.size(), 6u);  // The last case's length.
  for (const std::string& bytes : taken) {
    SCOPED_TRACE(::testing::PrintToString(bytes));
    ExpectCaptureEventSameAsParsed(bytes, /*must_take=*/true);
  }
}

TEST(WireCaptureEventRequestTest, DeclinesWhatTheParsedPathDecides) {
  const std::string event = kValidEvent;
  // Each occurrence alone is invalid, merged (as protobuf does) valid: the
  // scan must not take either.
  const std::string merged =
      StringField(2, StringField(1, "e")) + StringField(2, StringField(2, "d"));
  posthog::v1::CaptureEventRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(merged));
  EXPECT_EQ(parsed.event().event(), "e");
  EXPECT_EQ(parsed.event().distinct_id(), "d");
  const std::string declined[] = {
      merged,
      StringField(2, event) + StringField(2, event),  // Twice, valid each.
      StringField(1, "p"),                            // No event: Build refuses it.
      "",                                             // Nothing at all.
      StringField(1, "a") + StringField(1, "b") + StringField(2, event),  // Project kept last.
      Tag(3, 0) + '\1' + Tag(3, 0) + '\2' + StringField(2, event),        // Mode kept last.
      StringField(1, "\xff") + StringField(2, event),                     // Refused by protobuf.
      StringField(2, event) + StringField(4, "x"),                        // Unknown.
      Tag(2, 0) + '\1',                                                   // The event as a varint.
      Tag(1, 2) + std::string("\x81\x80\x80\x80\x80\x00", 6) + "p" + StringField(2, event),
      StringField(2, event).substr(0, 4),  // Truncated.
  };
  for (const std::string& bytes : declined) {
    SCOPED_TRACE(::testing::PrintToString(bytes));
    WireCaptureRequest request;
    EXPECT_FALSE(ScanCaptureEventRequest(bytes, &request));
  }
  // The event inside a taken request is still BuildWire's to decline.
  const std::string invalid_event = StringField(1, "p") + StringField(2, StringField(1, "e"));
  WireCaptureRequest request;
  ASSERT_TRUE(ScanCaptureEventRequest(invalid_event, &request));
  EXPECT_FALSE(MakeBuilder().BuildWire(request.events, true, true).has_value());
  ExpectCaptureEventSameAsParsed(invalid_event, /*must_take=*/false);
}

// BatchCaptureEventsRequest has StreamCaptureEventsRequest's layout: the
// same scan reads it as protobuf does.
TEST(WireCaptureRequestTest, BatchRequestsScanAsProtobufParses) {
  const std::string event = kValidEvent;
  const std::string taken[] = {
      StringField(1, "proj") + StringField(2, event) + Tag(3, 0) + '\1' + StringField(2, event),
      StringField(2, event), Tag(3, 0) + '\2',  // No events: the parsed path refuses it.
  };
  for (const std::string& bytes : taken) {
    posthog::v1::BatchCaptureEventsRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    WireCaptureRequest request;
    ASSERT_TRUE(ScanCaptureRequest(bytes, &request));
    EXPECT_EQ(request.project, parsed.project());
    EXPECT_EQ(request.ack_mode, static_cast<int32_t>(parsed.ack_mode()));
    ASSERT_EQ(request.events.size(), static_cast<size_t>(parsed.events_size()));
    for (size_t i = 0; i < request.events.size(); ++i) {
      EXPECT_EQ(request.events[i], parsed.events(static_cast<int>(i)).SerializeAsString());
    }
  }
}

TEST(WireEventDeclinesTest, InvalidUtf8AnywhereIsLeftToProtobuf) {
  for (const std::string& bad : {std::string("\xff"), std::string("a\xc3"),
                                 std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    ExpectDeclined(kValidEvent + StringField(3, Entry("k", StringValue(bad))));
    ExpectDeclined(kValidEvent + StringField(3, Entry(bad, StringValue("v"))));
    ExpectDeclined(StringField(1, bad) + StringField(2, "d"));
    ExpectDeclined(kValidEvent + StringField(6, StringField(1, "g") + StringField(2, bad)));
    posthog::v1::Event event;
    EXPECT_FALSE(event.ParseFromString(kValidEvent + StringField(3, Entry("k", StringValue(bad)))));
  }
}

TEST(WireEventDeclinesTest, ViolationsAreLeftToBuild) {
  ExpectDeclined(StringField(2, "d"));  // No event name.
  ExpectDeclined(StringField(1, "e"));  // No distinct_id.
  ExpectDeclined(kValidEvent + StringField(5, "not-a-uuid"));
  ExpectDeclined(kValidEvent + Tag(12, 0) + '\7');                 // geoip out of range.
  ExpectDeclined(kValidEvent + StringField(4, Tag(1, 0) + '\1'));  // 1970.
  ExpectDeclined(StringField(1, "e") + StringField(2, std::string(201, 'd')));
  EventLimits small;
  small.max_event_bytes = 100;
  ExpectDeclined(kValidEvent + StringField(3, Entry("k", StringValue(std::string(200, 'v')))),
                 small);
}

TEST(WireEventDeclinesTest, CallersPropertiesTheGatewayReplaces) {
  // EventJson drops them; Validate still counts their depth: left to Build.
  ExpectDeclined(kValidEvent + StringField(3, Entry("$lib", StringValue("mine"))));
  ExpectDeclined(kValidEvent + StringField(3, Entry("$is_server", StringValue("no"))));
  ExpectDeclined(kValidEvent + Tag(12, 0) + '\2' +
                 StringField(3, Entry("$geoip_disable", StringValue("x"))));
  ExpectSameAsBuild(kValidEvent + StringField(3, Entry("$lib", StringValue("mine"))), true,
                    /*must_take=*/false);
}

TEST(WireEventDeclinesTest, DepthAtTheLimitIsLeftToBuild) {
  // Structs nested `levels` deep in properties.
  auto nested = [](int levels) {
    std::string value = StringValue("leaf");
    for (int i = 1; i < levels; ++i) value = StringField(5, Entry("n", value));
    return kValidEvent + StringField(3, Entry("n", value));
  };
  EventLimits limits;
  limits.max_properties_depth = 8;
  ExpectSameAsBuild(nested(7), true, /*must_take=*/true, limits);
  ExpectDeclined(nested(8), limits);  // Build accepts it.
  ExpectDeclined(nested(9), limits);  // Build refuses it.
  ExpectSameAsBuild(nested(8), true, /*must_take=*/false, limits);
  // Far below protobuf's recursion limit the wire path still declines, as
  // the limit is configurable.
  limits.max_properties_depth = 1000;
  ExpectDeclined(nested(40), limits);
}

TEST(WireEventTest, SeveralEventsAllOrNone) {
  const EventBuilder builder = MakeBuilder();
  const std::string good = kValidEvent;
  std::optional<std::vector<BuiltEvent>> both = builder.BuildWire({good, good}, true, false);
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->size(), 2u);
  EXPECT_TRUE((*both)[0].uuid.empty());  // Not asked for.
  EXPECT_FALSE(builder.BuildWire({good, StringField(1, "e")}, true, false).has_value());
}

TEST(WireEventTest, RecordsOfSeveralEventsFollowEachOtherInOneBlock) {
  const EventBuilder builder = MakeBuilder();
  const EventBuilder reference = MakeBuilder();
  const std::string good = kValidEvent;
  RecordBlock block;
  ASSERT_TRUE(builder.BuildWireRecords({good, good, good}, true, "demo", &block, nullptr));
  std::optional<std::vector<BuiltEvent>> built =
      reference.BuildWire({good, good, good}, true, false);
  ASSERT_TRUE(built.has_value());
  ASSERT_EQ(block.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(block.json(i), (*built)[i].json) << i;
  EXPECT_NE(block.json(0), block.json(1));  // Their own uuids.
  // What the spool would write reads back as the same records.
  std::optional<RecordBlock> read = RecordBlock::Parse(std::string(block.bytes()));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->json(2), (*built)[2].json);
}

// The block a stream message's events are written into is reserved on an
// estimate from their wire bytes; what it holds beyond its records is memory
// the delivery queue's budget does not count (it counts the JSON). An event
// whose wire bytes are far larger than its JSON (a list of zeros: 11 bytes
// each on the wire, 2 in JSON) must not leave the block holding several
// times what it counts.
TEST(WireEventTest, RecordsBlockHoldsLittleMoreThanItsRecords) {
  std::string zeros;
  for (int i = 0; i < 20000; ++i) zeros += StringField(1, Tag(2, 1) + std::string(8, '\0'));
  const std::string wide = kValidEvent + StringField(3, Entry("z", StringField(6, zeros)));
  posthog::v1::Event bench;
  bench.set_event("bench event");
  bench.set_distinct_id("user-42");
  auto& fields = *bench.mutable_properties()->mutable_fields();
  fields["plan"].set_string_value("pro");
  fields["amount"].set_number_value(42);
  fields["$current_url"].set_string_value("https://example.com/checkout");
  const std::string ordinary = bench.SerializeAsString();
  const std::vector<std::vector<absl::string_view>> messages = {
      {wide}, {wide, ordinary}, std::vector<absl::string_view>(100, ordinary), {ordinary}};
  for (const std::vector<absl::string_view>& events : messages) {
    const EventBuilder builder = MakeBuilder();
    RecordBlock block;
    ASSERT_TRUE(builder.BuildWireRecords(events, true, "demo", &block, nullptr));
    ASSERT_EQ(block.size(), events.size());
    const size_t used = block.bytes().size();
    EXPECT_LE(block.allocated_bytes(), used + used / 2 + 512) << events.size() << " events";
  }
}

// A request of many empty events is two bytes each on the wire and sixteen
// in the scan's list, whose capacity callers keep (per thread for unary
// calls): the scan stops at what a request may hold, so a 4 MiB message no
// longer leaves 32 MiB behind.
TEST(WireCaptureRequestTest, TheScansListStaysWithinWhatARequestMayHold) {
  std::string many;
  for (int i = 0; i < 100000; ++i) many += StringField(2, "");
  WireCaptureRequest unary;
  EXPECT_FALSE(ScanCaptureEventRequest(many, &unary));
  EXPECT_LE(unary.events.capacity(), 2u);
  WireCaptureRequest batch;
  EXPECT_FALSE(ScanCaptureRequest(many, &batch));
  EXPECT_LE(batch.events.capacity(), 1024u);

  std::string most;
  for (int i = 0; i < 1000; ++i) most += StringField(2, kValidEvent);
  ASSERT_TRUE(ScanCaptureRequest(most, &batch));
  EXPECT_EQ(batch.events.size(), 1000u);
  EXPECT_FALSE(ScanCaptureRequest(most + StringField(2, kValidEvent), &batch));
}

}  // namespace
}  // namespace posthog_gateway
