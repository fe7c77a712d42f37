#include "server/observability/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/observability/build_info_stamp.h"

namespace posthog_gateway {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status Unparsable(const std::string& path) {
  return absl::DataLossError(absl::StrCat("cannot parse ", path));
}

// The boot time (seconds since the epoch) from the `btime` line of stat.
absl::StatusOr<double> BootTime(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "btime ")) continue;
    double btime = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(line), &btime)) break;
    return btime;
  }
  return Unparsable(path);
}

// The soft limit of "Max open files" in limits ("unlimited" is +Inf).
absl::StatusOr<double> MaxOpenFiles(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.empty()) break;
    if (fields[0] == "unlimited") return HUGE_VAL;
    double limit = 0;
    if (!absl::SimpleAtod(fields[0], &limit)) break;
    return limit;
  }
  return Unparsable(path);
}

// The entries of an fd directory; `self` discounts the descriptor that
// reads it.
absl::StatusOr<double> OpenFds(const std::string& path, bool self) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return self ? count - 1 : count;
}

// One observed family that reads a single figure of a fresh /proc reading.
void AddReading(MetricsRegistry* registry, const std::string& proc_root, std::string name,
                std::string help, std::string type,
                std::function<double(const ProcessReading&)> figure) {
  registry->AddObserved(std::move(name), std::move(help), std::move(type), {},
                        [proc_root, figure = std::move(figure)] {
                          absl::StatusOr<ProcessReading> reading = ReadProcess(
                              proc_root, "self", sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE));
                          if (!reading.ok()) return MetricReading{};
                          return MetricReading{{{}, figure(*reading)}};
                        });
}

}  // namespace

BuildInfo CurrentBuildInfo() { return {kBuildVersion, kBuildRevision, kBuildSource}; }

void AddBuildInfo(const BuildInfo& info, MetricsRegistry* registry) {
  registry->AddObserved(
      "posthog_gateway_build_info",
      "Always 1; the labels name the gateway's version, source revision and source repository.",
      "gauge", {"version", "revision", "source"}, [info] {
        return MetricReading{{{info.version, info.revision, info.source}, 1}};
      });
}

absl::StatusOr<ProcessReading> ReadProcess(const std::string& proc_root, const std::string& pid,
                                           long clock_ticks, long page_size) {
  const std::string dir = absl::StrCat(proc_root, "/", pid);
  const std::string stat_path = dir + "/stat";
  absl::StatusOr<std::string> stat = ReadFile(stat_path);
  if (!stat.ok()) return stat.status();
  // The command name (field 2) is in parentheses and may hold spaces and
  // parentheses itself: the fields after it start past the last ')'.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos || clock_ticks <= 0) return Unparsable(stat_path);
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipWhitespace());
  // fields[0] is field 3 (state): field N is fields[N - 3].
  auto field = [&fields](size_t n, double* value) {
    return n - 3 < fields.size() && absl::SimpleAtod(fields[n - 3], value);
  };
  double utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
  if (!field(14, &utime) || !field(15, &stime) || !field(22, &starttime) || !field(23, &vsize) ||
      !field(24, &rss)) {
    return Unparsable(stat_path);
  }
  absl::StatusOr<double> boot = BootTime(proc_root + "/stat");
  if (!boot.ok()) return boot.status();
  absl::StatusOr<double> max_fds = MaxOpenFiles(dir + "/limits");
  if (!max_fds.ok()) return max_fds.status();
  absl::StatusOr<double> open_fds = OpenFds(dir + "/fd", pid == "self");
  if (!open_fds.ok()) return open_fds.status();

  ProcessReading reading;
  reading.cpu_seconds = (utime + stime) / static_cast<double>(clock_ticks);
  reading.resident_memory_bytes = rss * static_cast<double>(page_size);
  reading.virtual_memory_bytes = vsize;
  reading.open_fds = *open_fds;
  reading.max_fds = *max_fds;
  // Whole seconds: the exposition prints them exactly.
  reading.start_time_seconds = std::floor(*boot + starttime / static_cast<double>(clock_ticks));
  return reading;
}

void AddProcessMetrics(MetricsRegistry* registry, std::string proc_root) {
  AddReading(registry, proc_root, "process_cpu_seconds_total",
             "Total user and system CPU time spent in seconds.", "counter",
             [](const ProcessReading& r) { return r.cpu_seconds; });
  AddReading(registry, proc_root, "process_resident_memory_bytes", "Resident memory size in bytes.",
             "gauge", [](const ProcessReading& r) { return r.resident_memory_bytes; });
  AddReading(registry, proc_root, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
             "gauge", [](const ProcessReading& r) { return r.virtual_memory_bytes; });
  AddReading(registry, proc_root, "process_open_fds", "Number of open file descriptors.", "gauge",
             [](const ProcessReading& r) { return r.open_fds; });
  AddReading(registry, proc_root, "process_max_fds", "Maximum number of open file descriptors.",
             "gauge", [](const ProcessReading& r) { return r.max_fds; });
  AddReading(registry, proc_root, "process_start_time_seconds",
             "Start time of the process since unix epoch in seconds.", "gauge",
             [](const ProcessReading& r) { return r.start_time_seconds; });
}

}  // namespace posthog_gateway
