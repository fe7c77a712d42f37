#ifndef EMULATOR_REQUEST_LOG_H_
#define EMULATOR_REQUEST_LOG_H_

// RequestLog: the requests the emulator has seen, per route name, with the
// auth method each used and the status it got, for /_emulator/requests.
// Only the path is kept (never the query string, which may hold a key).
// Keeps counters for every request and the last kRecent requests in full.
// Thread-safe.

#include <cstddef>
#include <deque>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

class RequestLog final {
 public:
  static constexpr size_t kRecent = 5000;

  RequestLog() = default;
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  void Record(const std::string& method, const std::string& path, const std::string& route,
              const std::string& auth, int status);

  // ToJson returns {"total": N, "routes": {route: {"count", "auth":
  // {method: n}, "status": {"200": n}}}, "recent": [{"method", "path",
  // "route", "auth", "status"}]}, optionally only for `route`.
  nlohmann::json ToJson(const std::string& route = "") const;

  void Clear();

 private:
  struct Entry {
    std::string method, path, route, auth;
    int status;
  };
  mutable absl::Mutex mu_;
  size_t total_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, nlohmann::json> routes_ ABSL_GUARDED_BY(mu_);
  std::deque<Entry> recent_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_emulator

#endif  // EMULATOR_REQUEST_LOG_H_
