#ifndef SERVER_COMMON_LOG_H_
#define SERVER_COMMON_LOG_H_

// Structured logging: one JSON object per line on stderr, as log collectors
// in a cluster expect: {"time", "severity", "message", ...fields}. Thread-safe.
//
// Never pass a key or a full payload: messages and field values that came from
// outside should go through RedactKeys (server/common/redact.h) first.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace posthog_gateway {

enum class LogSeverity { kDebug, kInfo, kWarning, kError };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Log writes one line. Lines below the minimum severity are dropped.
// Lines that LogBuffered holds are written first, in the same write, so
// that the output keeps the order in which lines were logged.
void Log(LogSeverity severity, absl::string_view message, const LogFields& fields = {});

// LogBuffered is Log for lines that may wait a little: an OK call's
// access-log line, one per call. Under load a write(2) per line cost the
// gateway about 10 us of CPU per durable CaptureEvent (bench/README.md), so
// while lines come faster than one per kLogFlushInterval they are held in
// memory and written together, one write for many lines:
//   - a line logged when nothing was written for kLogFlushInterval goes out
//     at once (a quiet gateway's lines are not delayed);
//   - held lines go out at most kLogFlushInterval after the previous write,
//     from a background thread ("log-flush"), or at once when they reach
//     kLogBufferBytes, before any line Log writes, on FlushLog and at exit;
//   - WARNING and ERROR lines are written at once, as by Log.
// A crash (or SIGKILL) loses the held lines: at most kLogFlushInterval of
// INFO lines.
void LogBuffered(LogSeverity severity, absl::string_view message, const LogFields& fields = {});

// The most a held line waits, and the held bytes that are written at once.
inline constexpr int64_t kLogFlushIntervalMillis = 20;
inline constexpr size_t kLogBufferBytes = 64 << 10;

// FlushLog writes the lines LogBuffered holds (tests; also run at exit).
void FlushLog();

inline void LogInfo(absl::string_view message, const LogFields& fields = {}) {
  Log(LogSeverity::kInfo, message, fields);
}
inline void LogWarning(absl::string_view message, const LogFields& fields = {}) {
  Log(LogSeverity::kWarning, message, fields);
}
inline void LogError(absl::string_view message, const LogFields& fields = {}) {
  Log(LogSeverity::kError, message, fields);
}

// SetMinLogSeverity sets the lowest severity written (kInfo by default).
void SetMinLogSeverity(LogSeverity severity);

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_LOG_H_
