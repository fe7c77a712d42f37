#include "server/common/log.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway {
namespace {

using ::testing::MatchesRegex;

// The one line Log writes for these arguments.
std::string LogLine(LogSeverity severity, const std::string& message, const LogFields& fields) {
  ::testing::internal::CaptureStderr();
  Log(severity, message, fields);
  return ::testing::internal::GetCapturedStderr();
}

// What nlohmann::ordered_json writes for the same line (Log's reference).
std::string Expected(const std::string& time, const std::string& severity,
                     const std::string& message, const LogFields& fields) {
  nlohmann::ordered_json line;
  line["time"] = time;
  line["severity"] = severity;
  line["message"] = message;
  for (const auto& [key, value] : fields) line[key] = value;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string TimeOf(const std::string& line) {
  return nlohmann::json::parse(line, nullptr, false).value("time", "");
}

TEST(LogTest, WritesOneJsonObjectPerLineInOrderWithMicrosecondUtcTime) {
  const LogFields fields = {{"method", "posthog.v1.FlagService/EvaluateFlags"},
                            {"code", "OK"},
                            {"duration_ms", "0.25"},
                            {"peer", "ipv4:127.0.0.1:5000"}};
  const std::string line = LogLine(LogSeverity::kInfo, "call", fields);

  EXPECT_THAT(TimeOf(line), MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                                         "[0-9]{2}\\.[0-9]{6}Z"));
  EXPECT_EQ(line, Expected(TimeOf(line), "INFO", "call", fields));
}

TEST(LogTest, EscapesExactlyAsTheJsonLibrary) {
  const LogFields fields = {{"quote", "a\"b"},
                            {"backslash", "c\\d"},
                            {"control", "line\nbreak\ttab\x01"},
                            {"utf8", "caf\xc3\xa9"},
                            {"invalid_utf8", "bad\xff"},
                            {"key \"quoted\"", "v"},
                            {"empty", ""}};
  const std::string line = LogLine(LogSeverity::kWarning, "odd \"message\"\n", fields);

  EXPECT_EQ(line, Expected(TimeOf(line), "WARNING", "odd \"message\"\n", fields));
}

TEST(LogTest, RepeatedKeyKeepsItsFirstPlaceAndTheLastValue) {
  const LogFields fields = {{"a", "1"}, {"b", "2"}, {"a", "3"}, {"message", "override"}};
  const std::string line = LogLine(LogSeverity::kError, "m", fields);

  EXPECT_THAT(line, MatchesRegex(".*\"severity\":\"ERROR\",\"message\":\"override\","
                                 "\"a\":\"3\",\"b\":\"2\"\\}\n"));
}

TEST(LogTest, DropsLinesBelowTheMinimumSeverity) {
  SetMinLogSeverity(LogSeverity::kWarning);
  const std::string dropped = LogLine(LogSeverity::kInfo, "quiet", {});
  const std::string kept = LogLine(LogSeverity::kWarning, "loud", {});
  SetMinLogSeverity(LogSeverity::kInfo);

  EXPECT_EQ(dropped, "");
  EXPECT_EQ(kept, Expected(TimeOf(kept), "WARNING", "loud", {}));
}

}  // namespace
}  // namespace posthog_gateway
