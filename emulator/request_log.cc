#include "emulator/request_log.h"

namespace posthog_emulator {

void RequestLog::Record(const std::string& method, const std::string& path,
                        const std::string& route, const std::string& auth, int status) {
  absl::MutexLock lock(&mu_);
  ++total_;
  nlohmann::json& r = routes_[route];
  if (r.is_null()) {
    r = {{"count", 0}, {"auth", nlohmann::json::object()}, {"status", nlohmann::json::object()}};
  }
  r["count"] = r["count"].get<int64_t>() + 1;
  r["auth"][auth] = r["auth"].value(auth, 0) + 1;
  const std::string s = std::to_string(status);
  r["status"][s] = r["status"].value(s, 0) + 1;
  recent_.push_back({method, path, route, auth, status});
  if (recent_.size() > kRecent) recent_.pop_front();
}

nlohmann::json RequestLog::ToJson(const std::string& route) const {
  absl::MutexLock lock(&mu_);
  nlohmann::json routes = nlohmann::json::object();
  for (const auto& [name, r] : routes_) {
    if (route.empty() || name == route) routes[name] = r;
  }
  nlohmann::json recent = nlohmann::json::array();
  for (const Entry& e : recent_) {
    if (!route.empty() && e.route != route) continue;
    recent.push_back({{"method", e.method},
                      {"path", e.path},
                      {"route", e.route},
                      {"auth", e.auth},
                      {"status", e.status}});
  }
  return {{"total", total_}, {"routes", routes}, {"recent", recent}};
}

void RequestLog::Clear() {
  absl::MutexLock lock(&mu_);
  total_ = 0;
  routes_.clear();
  recent_.clear();
}

}  // namespace posthog_emulator
