#ifndef SERVER_COMMON_LOG_H_
#define SERVER_COMMON_LOG_H_

// Structured logging: one JSON object per line on stderr, as log collectors
// in a cluster expect: {"time", "severity", "message", ...fields}. Thread-safe.
//
// Never pass a key or a full payload: messages and field values that came from
// outside should go through RedactKeys (server/common/redact.h) first.

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace posthog_gateway {

enum class LogSeverity { kDebug, kInfo, kWarning, kError };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Log writes one line. Lines below the minimum severity are dropped.
void Log(LogSeverity severity, absl::string_view message, const LogFields& fields = {});

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
