#include "server/common/log.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway {
namespace {

std::atomic<LogSeverity> min_severity{LogSeverity::kInfo};

const char* SeverityName(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug:
      return "DEBUG";
    case LogSeverity::kInfo:
      return "INFO";
    case LogSeverity::kWarning:
      return "WARNING";
    case LogSeverity::kError:
      return "ERROR";
  }
  return "INFO";
}

// Appends `value` as a JSON string, exactly as nlohmann::json's dump (no
// ASCII escaping, invalid UTF-8 replaced) would write it. Plain printable
// ASCII, the common case of an access-log line, is copied as it is.
void AppendJsonString(std::string& out, absl::string_view value) {
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x80 || c == '"' || c == '\\') {
      out += nlohmann::json(std::string(value))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  out.append(value.data(), value.size());
  out += '"';
}

// `now` as 2006-01-02T15:04:05.000000Z. The part up to the second is
// formatted once per second and thread: absl::FormatTime is the costly part
// of a log line.
std::string Timestamp(absl::Time now) {
  thread_local int64_t cached_second = -1;
  thread_local std::string cached_prefix;
  const int64_t micros = absl::ToUnixMicros(now);
  int64_t second = micros / 1000000;
  int64_t fraction = micros % 1000000;
  if (fraction < 0) {
    fraction += 1000000;
    second -= 1;
  }
  if (second != cached_second) {
    cached_prefix =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  return absl::StrFormat("%s.%06dZ", cached_prefix, fraction);
}

// Whether a key repeats: the slow path then keeps nlohmann::ordered_json's
// behaviour (a later value replaces the earlier one in its place).
bool HasDuplicateKey(const LogFields& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string& key = fields[i].first;
    if (key == "time" || key == "severity" || key == "message") return true;
    for (size_t j = 0; j < i; ++j) {
      if (fields[j].first == key) return true;
    }
  }
  return false;
}

}  // namespace

void SetMinLogSeverity(LogSeverity severity) { min_severity.store(severity); }

void Log(LogSeverity severity, absl::string_view message, const LogFields& fields) {
  if (severity < min_severity.load(std::memory_order_relaxed)) return;
  const absl::Time now = absl::Now();
  std::string text;
  if (HasDuplicateKey(fields)) {
    nlohmann::ordered_json line;
    line["time"] = Timestamp(now);
    line["severity"] = SeverityName(severity);
    line["message"] = std::string(message);
    for (const auto& [key, value] : fields) line[key] = value;
    text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    text.reserve(128);
    text += "{\"time\":\"";
    text += Timestamp(now);
    text += "\",\"severity\":\"";
    text += SeverityName(severity);
    text += "\",\"message\":";
    AppendJsonString(text, message);
    for (const auto& [key, value] : fields) {
      text += ',';
      AppendJsonString(text, key);
      text += ':';
      AppendJsonString(text, value);
    }
    text += "}\n";
  }
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace posthog_gateway
