#ifndef SERVER_OBSERVABILITY_PROCESS_METRICS_H_
#define SERVER_OBSERVABILITY_PROCESS_METRICS_H_

// What every Prometheus target is expected to expose about itself: the
// build it runs (`posthog_gateway_build_info`, the usual `*_build_info`
// gauge of value 1 whose labels name the version, the source revision and
// the source repository, the same values as the image's OCI labels) and the
// standard process metrics of Prometheus' client libraries (`process_*`,
// read from Linux's /proc when exposed).
//
// Thread-safe: the families read /proc (or the fixed build values) at each
// Expose and keep no state of their own.

#include <string>

#include "absl/status/statusor.h"
#include "server/observability/metrics.h"

namespace posthog_gateway {

struct BuildInfo {
  std::string version;   // "0.1.0", from the repository's VERSION file.
  std::string revision;  // The source commit, or "unknown".
  std::string source;    // Where the source lives (a repository URL), or "unknown".
};

// The build this binary was made from, as Bazel stamped it (see
// tools/workspace_status.sh and //server/observability:build_info_stamp).
BuildInfo CurrentBuildInfo();

// AddBuildInfo adds `posthog_gateway_build_info{version,revision,source} 1`.
void AddBuildInfo(const BuildInfo& info, MetricsRegistry* registry);

// One reading of /proc for the process metrics.
struct ProcessReading {
  double cpu_seconds = 0;  // User plus system time.
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;             // The soft limit on open files.
  double start_time_seconds = 0;  // Since the Unix epoch.
};

// ReadProcess reads the process `pid` ("self" for this one) under
// `proc_root` (normally "/proc"): <pid>/stat, <pid>/fd, <pid>/limits and
// the boot time in stat. `clock_ticks` and `page_size` convert stat's units
// (sysconf(_SC_CLK_TCK) and the page size for the live system). An error
// names the file that could not be read or parsed.
absl::StatusOr<ProcessReading> ReadProcess(const std::string& proc_root, const std::string& pid,
                                           long clock_ticks, long page_size);

// AddProcessMetrics adds process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds, read
// from `proc_root`/self at each Expose. A family whose reading fails exposes
// no series rather than a wrong value.
void AddProcessMetrics(MetricsRegistry* registry, std::string proc_root = "/proc");

}  // namespace posthog_gateway

#endif  // SERVER_OBSERVABILITY_PROCESS_METRICS_H_
