#include "server/common/log.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway {
namespace {

using ::testing::HasSubstr;
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

TEST(LogTest, BufferedLinesComeOutWholeAndInOrderBeforeTheNextLogLine) {
  const LogFields fields = {{"method", "posthog.v1.CaptureService/CaptureEvent"}, {"code", "OK"}};
  FlushLog();
  ::testing::internal::CaptureStderr();
  // Enough held lines to pass kLogBufferBytes once: some are written by
  // LogBuffered itself, the rest by the Log line after them.
  const int lines = static_cast<int>(kLogBufferBytes / 100) + 10;
  for (int i = 0; i < lines; ++i) {
    LogBuffered(LogSeverity::kInfo, absl::StrCat("call ", i), fields);
  }
  Log(LogSeverity::kInfo, "after", fields);
  const std::string out = ::testing::internal::GetCapturedStderr();

  const std::vector<std::string> written = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(written.size(), static_cast<size_t>(lines + 1)) << out.substr(0, 2000);
  for (int i = 0; i < lines; ++i) {
    const std::string line = written[i] + "\n";
    EXPECT_EQ(line, Expected(TimeOf(line), "INFO", absl::StrCat("call ", i), fields));
  }
  EXPECT_EQ(written.back() + "\n", Expected(TimeOf(written.back()), "INFO", "after", fields));
}

TEST(LogTest, FlushLogWritesHeldLinesAndWarningsAreNeverHeld) {
  FlushLog();
  ::testing::internal::CaptureStderr();
  LogBuffered(LogSeverity::kInfo, "held", {{"code", "OK"}});
  LogBuffered(LogSeverity::kWarning, "failed", {{"code", "NotFound"}});
  // The warning went out at once, and the held line before it.
  const std::string out = ::testing::internal::GetCapturedStderr();
  const size_t held = out.find("\"message\":\"held\"");
  ASSERT_NE(held, std::string::npos) << out;
  EXPECT_NE(out.find("\"message\":\"failed\"", held), std::string::npos) << out;

  ::testing::internal::CaptureStderr();
  LogBuffered(LogSeverity::kInfo, "last", {});
  FlushLog();
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("\"message\":\"last\"}\n"));
}

TEST(LogTest, BufferedLinesBelowTheMinimumSeverityAreDropped) {
  SetMinLogSeverity(LogSeverity::kWarning);
  FlushLog();
  ::testing::internal::CaptureStderr();
  LogBuffered(LogSeverity::kInfo, "dropped", {});
  FlushLog();
  const std::string out = ::testing::internal::GetCapturedStderr();
  SetMinLogSeverity(LogSeverity::kInfo);
  EXPECT_EQ(out, "");
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
