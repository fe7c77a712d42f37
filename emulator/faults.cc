#include "emulator/faults.h"

#include <utility>

#include "absl/strings/match.h"

namespace posthog_emulator {

using nlohmann::json;

absl::Status FaultInjector::Configure(const json& config) {
  json rules_json = config;
  uint64_t seed = 0;
  if (config.is_object()) {
    seed = config.value("seed", uint64_t{0});
    rules_json = config.value("rules", json::array());
  }
  if (!rules_json.is_array()) {
    return absl::InvalidArgumentError("faults: expected a list of rules");
  }
  std::vector<Rule> rules;
  try {
    for (const json& r : rules_json) {
      if (!r.is_object()) {
        return absl::InvalidArgumentError("faults: a rule must be an object");
      }
      Rule rule;
      rule.route = r.value("route", "*");
      rule.latency_ms = r.value("latency_ms", 0);
      rule.error_rate = r.value("error_rate", 0.0);
      rule.status = r.value("status", 500);
      rule.retry_after_s = r.value("retry_after_s", -1);
      rule.reset_rate = r.value("reset_rate", 0.0);
      rule.truncate_rate = r.value("truncate_rate", 0.0);
      rule.malformed_rate = r.value("malformed_rate", 0.0);
      rule.foreign_next_host = r.value("foreign_next_host", "");
      rule.stall_ms = r.value("stall_ms", 0);
      if (r.contains("count") && !r["count"].is_null()) {
        rule.count = r["count"].get<int64_t>();
      }
      if (r.contains("seed")) seed = r["seed"].get<uint64_t>();
      rules.push_back(std::move(rule));
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(std::string("faults: ") + e.what());
  }
  absl::MutexLock lock(&mu_);
  rules_ = std::move(rules);
  seed_ = seed;
  rng_.seed(seed);
  return absl::OkStatus();
}

json FaultInjector::Config() const {
  absl::MutexLock lock(&mu_);
  json rules = json::array();
  for (const Rule& r : rules_) {
    json j = {{"route", r.route},
              {"latency_ms", r.latency_ms},
              {"error_rate", r.error_rate},
              {"status", r.status},
              {"reset_rate", r.reset_rate},
              {"truncate_rate", r.truncate_rate},
              {"malformed_rate", r.malformed_rate},
              {"stall_ms", r.stall_ms}};
    if (r.retry_after_s >= 0) j["retry_after_s"] = r.retry_after_s;
    if (!r.foreign_next_host.empty()) j["foreign_next_host"] = r.foreign_next_host;
    if (r.count.has_value()) j["count"] = *r.count;
    rules.push_back(std::move(j));
  }
  return {{"seed", seed_}, {"rules", rules}};
}

FaultDecision FaultInjector::Decide(const std::string& route, const std::string& path) {
  absl::MutexLock lock(&mu_);
  FaultDecision d;
  for (Rule& rule : rules_) {
    const bool applies =
        rule.route == "*" || rule.route == route ||
        (!rule.route.empty() && rule.route[0] == '/' && absl::StartsWith(path, rule.route));
    if (!applies || (rule.count.has_value() && *rule.count <= 0)) continue;
    if (rule.count.has_value()) --*rule.count;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    auto roll = [&](double rate) {
      if (rate <= 0) return false;
      if (rate >= 1) return true;
      return uniform(rng_) < rate;
    };
    d.latency_ms = rule.latency_ms;
    if (roll(rule.error_rate)) {
      d.status = rule.status;
      d.retry_after_s = rule.retry_after_s;
    }
    d.reset = roll(rule.reset_rate);
    d.truncate = roll(rule.truncate_rate);
    d.malformed = roll(rule.malformed_rate);
    d.foreign_next_host = rule.foreign_next_host;
    d.stall_ms = rule.stall_ms;
    break;
  }
  return d;
}

}  // namespace posthog_emulator
