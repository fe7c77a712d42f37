#include "emulator/json_scan.h"

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace posthog_emulator {
namespace {

// The scan of one body; `ok` is ScanCaptureBody's answer.
struct Scan {
  bool ok = false;
  bool is_array = false;
  ScannedObject root;
  std::vector<ScannedObject> events;
};

Scan ScanOf(absl::string_view body) {
  Scan scan;
  scan.ok = ScanCaptureBody(body, &scan.root, &scan.events, &scan.is_array);
  return scan;
}

absl::string_view Text(const ScannedObject& o) {
  return absl::string_view(o.begin, static_cast<size_t>(o.end - o.begin));
}

TEST(ScanCaptureBodyTest, ASingleEventRecordsTheMembersCaptureReads) {
  const std::string body =
      R"( {"event": "signup", "distinct_id": 42, "properties": {"token": "phc_x", "plan": [1, {"a": null}]},
           "timestamp": "2026-01-01T00:00:00Z", "other": true} )";
  const Scan scan = ScanOf(body);
  ASSERT_TRUE(scan.ok);
  EXPECT_FALSE(scan.is_array);
  EXPECT_TRUE(scan.events.empty());
  const Members& top = scan.root.top;
  EXPECT_EQ(top.slot[kEventSlot].kind, Kind::kString);
  EXPECT_EQ(top.slot[kEventSlot].text(), "signup");
  EXPECT_EQ(top.slot[kDistinctIdSlot].kind, Kind::kNumber);
  EXPECT_TRUE(top.slot[kDistinctIdSlot].simple_int);
  EXPECT_EQ(top.slot[kDistinctIdSlot].text(), "42");
  EXPECT_EQ(top.slot[kTimestampSlot].text(), "2026-01-01T00:00:00Z");
  EXPECT_EQ(top.slot[kPropertiesSlot].kind, Kind::kObject);
  EXPECT_EQ(top.slot[kUuidSlot].kind, Kind::kNone);
  EXPECT_EQ(scan.root.props.slot[kTokenSlot].text(), "phc_x");
  EXPECT_FALSE(top.duplicate || top.escaped_key || top.person_key);
  EXPECT_EQ(Text(scan.root).front(), '{');
  EXPECT_EQ(Text(scan.root).back(), '}');
}

TEST(ScanCaptureBodyTest, ABatchRecordsEachEventsRange) {
  const std::string body =
      R"({"api_key": "phc_x", "batch": [{"event": "a", "distinct_id": "u"}, {"event": "b"}]})";
  const Scan scan = ScanOf(body);
  ASSERT_TRUE(scan.ok);
  EXPECT_EQ(scan.root.top.slot[kApiKeySlot].text(), "phc_x");
  EXPECT_EQ(scan.root.top.slot[kBatchSlot].kind, Kind::kArray);
  ASSERT_EQ(scan.events.size(), 2u);
  EXPECT_EQ(Text(scan.events[0]), R"({"event": "a", "distinct_id": "u"})");
  EXPECT_EQ(Text(scan.events[1]), R"({"event": "b"})");
  EXPECT_EQ(scan.events[0].top.slot[kDistinctIdSlot].text(), "u");
}

TEST(ScanCaptureBodyTest, ARootArrayMustHoldObjects) {
  Scan scan = ScanOf(R"([{"event": "a"}, {"event": "b"}])");
  ASSERT_TRUE(scan.ok);
  EXPECT_TRUE(scan.is_array);
  EXPECT_EQ(scan.events.size(), 2u);
  EXPECT_FALSE(ScanOf(R"([{"event": "a"}, 1])").ok);
}

TEST(ScanCaptureBodyTest, FlagsWhatTheDomPathMustHandle) {
  EXPECT_TRUE(ScanOf(R"({"event": "a", "event": "b"})").root.top.duplicate);
  EXPECT_TRUE(ScanOf(R"({"ev\u0065nt": "a"})").root.top.escaped_key);
  EXPECT_TRUE(ScanOf(R"({"event": "a", "$set": {"x": 1}})").root.top.person_key);
  EXPECT_TRUE(ScanOf(R"({"event": "a", "properties": {"$set_once": {}}})").root.props.person_key);
  const Scan escaped = ScanOf(R"({"event": "a\nb"})");
  ASSERT_TRUE(escaped.ok);
  EXPECT_TRUE(escaped.root.top.slot[kEventSlot].escaped);
  // Integers whose text is not what nlohmann would print back.
  EXPECT_FALSE(ScanOf(R"({"distinct_id": 1.5})").root.top.slot[kDistinctIdSlot].simple_int);
  EXPECT_FALSE(ScanOf(R"({"distinct_id": -0})").root.top.slot[kDistinctIdSlot].simple_int);
  EXPECT_FALSE(
      ScanOf(R"({"distinct_id": 1234567890123456789})").root.top.slot[kDistinctIdSlot].simple_int);
  EXPECT_TRUE(ScanOf(R"({"distinct_id": -7})").root.top.slot[kDistinctIdSlot].simple_int);
}

TEST(ScanCaptureBodyTest, RejectsWhatItLeavesToNlohmann) {
  for (const std::string& body : {
           std::string(""),
           std::string("\xEF\xBB\xBF{}"),                  // A BOM.
           std::string(R"({"event": "\ud83d\ude00"})"),    // A surrogate pair.
           std::string(R"({"event": "a"} x)"),             // Trailing text.
           std::string(R"({"event": "a",})"),              // Trailing comma.
           std::string(R"({"event": 'a'})"),               // Not JSON.
           std::string("{\"event\": \"\xC0\xAF\"}"),       // Overlong UTF-8.
           std::string("{\"event\": \"a\x01\"}"),          // A control character.
           std::string(R"({"n": 1e999})"),                 // Would overflow a double.
           std::string(R"({"n": 01})"),                    // A leading zero.
           std::string(R"("just a string")"),              // Neither object nor array.
           std::string(300, '[') + std::string(300, ']'),  // Deeper than 256.
       }) {
    EXPECT_FALSE(ScanOf(body).ok) << body;
  }
}

TEST(ScanCaptureBodyTest, AcceptsValidUtf8AndLongStrings) {
  // Longer than the 16-byte blocks the SSE2 path reads, with multi-byte
  // characters on both sides of a block boundary.
  const std::string name = "\xC3\xA9t\xC3\xA9-\xE2\x82\xAC-\xF0\x9F\x98\x80-0123456789abcdef";
  const std::string body = "{\"event\": \"" + name + "\"}";  // The scan points into it.
  const Scan scan = ScanOf(body);
  ASSERT_TRUE(scan.ok);
  EXPECT_EQ(scan.root.top.slot[kEventSlot].text(), name);
  EXPECT_FALSE(scan.root.top.slot[kEventSlot].escaped);
}

TEST(ClassifyTest, NamesTheSlotsAndPersonKeys) {
  bool person = false;
  EXPECT_EQ(Classify("distinct_id", &person), kDistinctIdSlot);
  EXPECT_EQ(Classify("$token", &person), kDollarTokenSlot);
  EXPECT_EQ(Classify("eventx", &person), kNumSlots);
  EXPECT_FALSE(person);
  EXPECT_EQ(Classify("$anon_distinct_id", &person), kNumSlots);
  EXPECT_TRUE(person);
}

}  // namespace
}  // namespace posthog_emulator
