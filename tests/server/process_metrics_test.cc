#include "server/observability/process_metrics.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/observability/metrics.h"

namespace posthog_gateway {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

// A /proc of one process, 4242, written by the test.
class FakeProc {
 public:
  FakeProc() : root_(absl::StrCat(::testing::TempDir(), "/proc-", getpid(), "-", Next())) {
    std::filesystem::create_directories(root_ + "/4242/fd");
    Write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
    // comm holds a space and a parenthesis; utime 250, stime 50 ticks,
    // starttime 1234 ticks, vsize 1 GiB, rss 1000 pages.
    Write("4242/stat",
          "4242 (gate way) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1234 "
          "1073741824 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
    Write("4242/limits",
          "Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max processes             4096                 4096                 processes \n"
          "Max open files            65536                1048576              files     \n");
    for (int fd : {0, 1, 2, 7}) Write(absl::StrCat("4242/fd/", fd), "");
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }

  void Write(const std::string& path, const std::string& text) {
    std::ofstream(absl::StrCat(root_, "/", path)) << text;
  }
  const std::string& root() const { return root_; }

 private:
  static int Next() {
    static int n = 0;
    return ++n;
  }
  const std::string root_;
};

TEST(ReadProcessTest, ReadsStatLimitsAndFds) {
  FakeProc proc;
  absl::StatusOr<ProcessReading> reading = ReadProcess(proc.root(), "4242", 100, 4096);
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->cpu_seconds, 3.0);
  EXPECT_EQ(reading->resident_memory_bytes, 4096000.0);
  EXPECT_EQ(reading->virtual_memory_bytes, 1073741824.0);
  EXPECT_EQ(reading->open_fds, 4.0);
  EXPECT_EQ(reading->max_fds, 65536.0);
  EXPECT_EQ(reading->start_time_seconds, 1700000012.0);
}

TEST(ReadProcessTest, UnlimitedOpenFilesIsInfinite) {
  FakeProc proc;
  proc.Write("4242/limits",
             "Max open files            unlimited            unlimited            files\n");
  absl::StatusOr<ProcessReading> reading = ReadProcess(proc.root(), "4242", 100, 4096);
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_TRUE(std::isinf(reading->max_fds));
}

TEST(ReadProcessTest, AMissingOrTruncatedFileIsAnError) {
  FakeProc proc;
  EXPECT_EQ(ReadProcess(proc.root(), "999", 100, 4096).status().code(),
            absl::StatusCode::kNotFound);
  proc.Write("4242/stat", "4242 (gateway) S 1 2 3\n");
  absl::Status truncated = ReadProcess(proc.root(), "4242", 100, 4096).status();
  EXPECT_EQ(truncated.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(truncated.message(), HasSubstr("4242/stat"));
  FakeProc no_btime;
  no_btime.Write("stat", "cpu  1 2 3\n");
  EXPECT_EQ(ReadProcess(no_btime.root(), "4242", 100, 4096).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(ProcessMetricsTest, ExposesThisProcessUnderPrometheusStandardNames) {
  MetricsRegistry registry;
  AddProcessMetrics(&registry);
  const std::string text = registry.Expose();
  for (const char* family :
       {"process_cpu_seconds_total counter", "process_resident_memory_bytes gauge",
        "process_virtual_memory_bytes gauge", "process_open_fds gauge", "process_max_fds gauge",
        "process_start_time_seconds gauge"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE ", family, "\n"))) << family;
  }
  EXPECT_THAT(text, ContainsRegex("\nprocess_resident_memory_bytes [1-9][0-9]*\n"));
  EXPECT_THAT(text, ContainsRegex("\nprocess_open_fds [1-9][0-9]*\n"));
  EXPECT_THAT(text, ContainsRegex("\nprocess_start_time_seconds 1[0-9]{9}\n"));
}

TEST(ProcessMetricsTest, AnUnreadableProcExposesNoSeries) {
  MetricsRegistry registry;
  AddProcessMetrics(&registry, ::testing::TempDir() + "/no-such-proc");
  EXPECT_EQ(registry.Expose().find("\nprocess_open_fds "), std::string::npos);
  EXPECT_THAT(registry.Expose(), HasSubstr("# TYPE process_open_fds gauge\n"));
}

TEST(BuildInfoTest, ExposesVersionRevisionAndSourceAsLabels) {
  MetricsRegistry registry;
  AddBuildInfo({"1.2.3", "0123abc", "https://example.com/gateway.git"}, &registry);
  EXPECT_EQ(registry.Expose(),
            "# HELP posthog_gateway_build_info Always 1; the labels name the gateway's version, "
            "source revision and source repository.\n"
            "# TYPE posthog_gateway_build_info gauge\n"
            "posthog_gateway_build_info{version=\"1.2.3\",revision=\"0123abc\","
            "source=\"https://example.com/gateway.git\"} 1\n");
}

TEST(BuildInfoTest, TheStampedBuildNamesTheRepositoryVersion) {
  const BuildInfo info = CurrentBuildInfo();
  std::ifstream version_file("VERSION");
  std::string version;
  std::getline(version_file, version);
  ASSERT_FALSE(version.empty());
  EXPECT_EQ(info.version, version);
  EXPECT_FALSE(info.revision.empty());
  EXPECT_FALSE(info.source.empty());
}

}  // namespace
}  // namespace posthog_gateway
