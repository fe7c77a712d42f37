#include "server/common/log.h"

#include <atomic>
#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway {
namespace {

std::atomic<LogSeverity> min_severity{LogSeverity::kInfo};

const char* SeverityName(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug: return "DEBUG";
    case LogSeverity::kInfo: return "INFO";
    case LogSeverity::kWarning: return "WARNING";
    case LogSeverity::kError: return "ERROR";
  }
  return "INFO";
}

}  // namespace

void SetMinLogSeverity(LogSeverity severity) { min_severity.store(severity); }

void Log(LogSeverity severity, absl::string_view message,
         const LogFields& fields) {
  if (severity < min_severity.load(std::memory_order_relaxed)) return;
  nlohmann::ordered_json line;
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                                  absl::UTCTimeZone());
  line["severity"] = SeverityName(severity);
  line["message"] = std::string(message);
  for (const auto& [key, value] : fields) line[key] = value;
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace posthog_gateway
