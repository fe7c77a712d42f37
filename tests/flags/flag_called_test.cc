#include "server/flags/flag_called.h"

#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/posthog/json_struct.h"

namespace posthog_gateway::flags {
namespace {

using nlohmann::json;

FlagCalledCall Call() {
  FlagCalledCall call;
  call.distinct_id = "user-1";
  call.now = absl::FromUnixMillis(1'800'000'000'123);
  call.evaluated_at_ms = 1'800'000'000'000;
  call.request_id = "req-1";
  return call;
}

FlagCalledResult Boolean(const std::string& key, bool enabled) {
  FlagCalledResult result;
  result.key = key;
  result.enabled = enabled;
  return result;
}

TEST(FlagCalledEventTest, ALocalBooleanFlagReportsItsValueAndNoRequestId) {
  FlagCalledResult result = Boolean("beta", true);
  result.local = true;
  result.reason_description = "Matched condition set 1";
  result.flag_id = 12;
  result.flag_version = 3;
  result.has_experiment = false;
  const posthog::v1::Event event = FlagCalledEvent(Call(), result, "uuid-1");
  EXPECT_EQ(event.event(), "$feature_flag_called");
  EXPECT_EQ(event.distinct_id(), "user-1");
  EXPECT_EQ(event.uuid(), "uuid-1");
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(event.timestamp()),
            1'800'000'000'123);
  EXPECT_TRUE(event.groups().empty());
  EXPECT_EQ(JsonFromStruct(event.properties()), json::parse(R"({
    "$feature_flag": "beta",
    "$feature_flag_response": true,
    "$feature/beta": true,
    "locally_evaluated": true,
    "$feature_flag_evaluated_at": 1800000000000,
    "$feature_flag_reason": "Matched condition set 1",
    "$feature_flag_id": 12,
    "$feature_flag_version": 3,
    "$feature_flag_has_experiment": false
  })"));
}

TEST(FlagCalledEventTest, ARemoteVariantReportsTheVariantPayloadAndRequestId) {
  FlagCalledCall call = Call();
  call.groups = {{"company", "acme"}};
  FlagCalledResult result = Boolean("checkout", true);
  result.variant = "test";
  result.payload = json::parse(R"({"color": "blue"})");
  result.has_experiment = true;
  const posthog::v1::Event event = FlagCalledEvent(call, result, "uuid-2");
  EXPECT_EQ(event.groups().at("company"), "acme");
  EXPECT_EQ(JsonFromStruct(event.properties()), json::parse(R"({
    "$feature_flag": "checkout",
    "$feature_flag_response": "test",
    "$feature/checkout": "test",
    "locally_evaluated": false,
    "$feature_flag_evaluated_at": 1800000000000,
    "$feature_flag_payload": {"color": "blue"},
    "$feature_flag_request_id": "req-1",
    "$feature_flag_has_experiment": true
  })"));
}

TEST(FlagCalledEventTest, AnErrorSaysWhetherTheQuotaWasTheCause) {
  FlagCalledResult result = Boolean("beta", false);
  result.error_code = posthog::v1::FLAG_ERROR_CODE_GENERAL;
  FlagCalledCall call = Call();
  json properties = JsonFromStruct(FlagCalledEvent(call, result, "u").properties());
  EXPECT_EQ(properties["$feature_flag_error"], "errors_while_computing_flags");
  EXPECT_EQ(properties["$feature_flag_response"], false);
  EXPECT_FALSE(properties.contains("$feature_flag_has_experiment"));  // Not known.
  call.quota_limited = true;
  properties = JsonFromStruct(FlagCalledEvent(call, result, "u").properties());
  EXPECT_EQ(properties["$feature_flag_error"], "quota_limited");
}

TEST(FlagCalledEventTest, IsAFunctionOfItsInputs) {
  const FlagCalledResult result = Boolean("beta", true);
  // Map fields (properties, groups) serialize in no fixed order: compare fields.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      FlagCalledEvent(Call(), result, "u"), FlagCalledEvent(Call(), result, "u")));
}

TEST(FlagCalledDueTest, NeverForAFlagThatDoesNotExist) {
  FlagCalledDeduplicator seen(10);
  FlagCalledResult missing = Boolean("nope", false);
  missing.error_code = posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND;
  EXPECT_FALSE(FlagCalledDue(Call(), missing, seen));
  // Another error still reports the call.
  missing.error_code = posthog::v1::FLAG_ERROR_CODE_GENERAL;
  EXPECT_TRUE(FlagCalledDue(Call(), missing, seen));
}

TEST(FlagCalledDueTest, OncePerUserFlagValueAndGroups) {
  FlagCalledDeduplicator seen(10);
  FlagCalledCall call = Call();
  FlagCalledResult result = Boolean("beta", true);
  EXPECT_TRUE(FlagCalledDue(call, result, seen));
  EXPECT_FALSE(FlagCalledDue(call, result, seen));
  result.local = true;  // Who decided does not matter.
  EXPECT_FALSE(FlagCalledDue(call, result, seen));
  result.enabled = false;  // Another value.
  EXPECT_TRUE(FlagCalledDue(call, result, seen));
  result.variant = "true";  // A variant named "true" is not the boolean.
  EXPECT_TRUE(FlagCalledDue(call, result, seen));
  call.groups = {{"company", "acme"}};
  EXPECT_TRUE(FlagCalledDue(call, result, seen));
  call.distinct_id = "user-2";
  EXPECT_TRUE(FlagCalledDue(call, result, seen));
  result.key = "other";
  EXPECT_TRUE(FlagCalledDue(call, result, seen));
}

TEST(FlagCalledDeduplicatorTest, SendsEachTupleOnceAndForgetsTheOldest) {
  FlagCalledDeduplicator seen(2);
  EXPECT_TRUE(seen.FirstTime("u1", "f", "true", {}));
  EXPECT_FALSE(seen.FirstTime("u1", "f", "true", {}));
  EXPECT_TRUE(seen.FirstTime("u1", "f", "\"test\"", {}));                 // Another value.
  EXPECT_TRUE(seen.FirstTime("u1", "f", "true", {{"company", "acme"}}));  // Groups differ.
  // Capacity 2: the first tuple was forgotten.
  EXPECT_TRUE(seen.FirstTime("u1", "f", "true", {}));
}

TEST(FlagCalledDeduplicatorTest, PartsCannotCollideThroughSeparators) {
  FlagCalledDeduplicator seen(10);
  EXPECT_TRUE(seen.FirstTime("a:b", "c", "true", {}));
  EXPECT_TRUE(seen.FirstTime("a", "b:c", "true", {}));
}

}  // namespace
}  // namespace posthog_gateway::flags
