#include "server/common/log.h"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/base/call_once.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
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

// The line Log and LogBuffered write.
std::string FormatLine(LogSeverity severity, absl::string_view message, const LogFields& fields) {
  const absl::Time now = absl::Now();
  if (HasDuplicateKey(fields)) {
    nlohmann::ordered_json line;
    line["time"] = Timestamp(now);
    line["severity"] = SeverityName(severity);
    line["message"] = std::string(message);
    for (const auto& [key, value] : fields) line[key] = value;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string text;
  text.reserve(256);
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
  return text;
}

// The lines LogBuffered holds. Never destroyed: lines may be logged, and
// the flusher runs, while static objects are destroyed at exit.
struct HeldLines {
  // Held while lines are written, from taking them to the write's end, so
  // that the output's order is the order lines were logged in.
  absl::Mutex write_mu;
  absl::Mutex mu ABSL_ACQUIRED_AFTER(write_mu);
  std::string lines ABSL_GUARDED_BY(mu);
  // The other buffer: `lines` is swapped with it when they are written, so
  // that both keep their capacity and appending never reallocates (copying
  // tens of KiB) under `mu` while calls wait to log.
  std::string spare ABSL_GUARDED_BY(write_mu);
  // When lines were last taken to be written (absl::GetCurrentTimeNanos).
  int64_t last_write_ns ABSL_GUARDED_BY(mu) = 0;
};

HeldLines& Held() {
  static HeldLines* const held = new HeldLines();
  return *held;
}

constexpr int64_t kFlushIntervalNanos = kLogFlushIntervalMillis * 1000 * 1000;

// Writes the held lines, then `line`, in one write.
void WriteOut(absl::string_view line) {
  HeldLines& held = Held();
  absl::MutexLock write_lock(&held.write_mu);
  std::string& out = held.spare;
  {
    absl::MutexLock lock(&held.mu);
    if (!held.lines.empty()) out.swap(held.lines);
    held.last_write_ns = absl::GetCurrentTimeNanos();
  }
  if (out.empty()) {
    // One fwrite per write: stdio locks the stream, so lines never
    // interleave with another writer's.
    if (!line.empty()) std::fwrite(line.data(), 1, line.size(), stderr);
    return;
  }
  out.append(line.data(), line.size());
  std::fwrite(out.data(), 1, out.size(), stderr);
  out.clear();
}

// Writes held lines at most kLogFlushInterval after the previous write.
// Wakes once per interval at most while lines are logged, and not at all
// while none are.
void FlusherLoop() {
  pthread_setname_np(pthread_self(), "log-flush");
  HeldLines& held = Held();
  auto has_lines = [&held]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(held.mu) { return !held.lines.empty(); };
  while (true) {
    int64_t due_ns = 0;
    {
      absl::MutexLock lock(&held.mu);
      held.mu.Await(absl::Condition(&has_lines));
      due_ns = held.last_write_ns + kFlushIntervalNanos;
    }
    const int64_t wait_ns = due_ns - absl::GetCurrentTimeNanos();
    if (wait_ns > 0) absl::SleepFor(absl::Nanoseconds(wait_ns));
    WriteOut("");
  }
}

void StartFlusher() {
  // Room for what is written at once (kLogBufferBytes) and the line past
  // it, only once lines are held: a process that never holds one (or logs
  // with its address space capped, as a test of thread-start failure does)
  // allocates no more than its lines.
  HeldLines& held = Held();
  {
    absl::MutexLock write_lock(&held.write_mu);
    absl::MutexLock lock(&held.mu);
    held.lines.reserve(kLogBufferBytes + 4096);
    held.spare.reserve(kLogBufferBytes + 4096);
  }
  std::thread(FlusherLoop).detach();
  std::atexit(FlushLog);
}

}  // namespace

void SetMinLogSeverity(LogSeverity severity) { min_severity.store(severity); }

void Log(LogSeverity severity, absl::string_view message, const LogFields& fields) {
  if (severity < min_severity.load(std::memory_order_relaxed)) return;
  WriteOut(FormatLine(severity, message, fields));
}

void LogBuffered(LogSeverity severity, absl::string_view message, const LogFields& fields) {
  if (severity < min_severity.load(std::memory_order_relaxed)) return;
  if (severity >= LogSeverity::kWarning) return Log(severity, message, fields);
  static absl::once_flag flusher_started;
  absl::call_once(flusher_started, StartFlusher);
  const std::string text = FormatLine(severity, message, fields);
  HeldLines& held = Held();
  bool write_now = false;
  {
    absl::MutexLock lock(&held.mu);
    // Quiet for an interval: nothing to batch the line with, so it need not
    // wait. Otherwise the flusher (woken by the first held line) writes it.
    write_now = held.lines.empty() &&
                absl::GetCurrentTimeNanos() - held.last_write_ns >= kFlushIntervalNanos;
    held.lines.append(text);
    write_now = write_now || held.lines.size() >= kLogBufferBytes;
  }
  if (write_now) WriteOut("");
}

void FlushLog() { WriteOut(""); }

}  // namespace posthog_gateway
