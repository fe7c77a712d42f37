#ifndef EMULATOR_FAULTS_H_
#define EMULATOR_FAULTS_H_

// FaultInjector: decides, per request, which fault (if any) to inject. The
// configuration is JSON (see emulator/README.md, "Faults"): either a list
// of rules or `{"seed": N, "rules": [...]}`. A rule applies to a request
// when its "route" is "*", the request's route name, or a prefix of its
// path; the first applicable rule with remaining "count" wins and its count
// goes down by one. Probabilities draw from a generator seeded with "seed"
// (default 0), so a test sees the same sequence every run.
//
// Thread-safe (one absl::Mutex).

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// FaultDecision is what to do to one request; default: nothing.
struct FaultDecision {
  int latency_ms = 0;             // sleep before handling
  int status = 0;                 // non-zero: answer with this error status
  int retry_after_s = -1;         // >= 0: add Retry-After
  bool reset = false;             // close the connection mid-response
  bool truncate = false;          // send the first half of the JSON body
  bool malformed = false;         // send a body that is not JSON
  std::string foreign_next_host;  // rewrite `next` URLs to this origin
  int stall_ms = 0;               // stall after half the body
};

class FaultInjector final {
 public:
  FaultInjector() = default;
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // Configure replaces the rules; InvalidArgument when `config` is not a
  // valid fault configuration (the old rules then stay).
  absl::Status Configure(const nlohmann::json& config);

  // Config returns the current rules with their remaining counts.
  nlohmann::json Config() const;

  // Decide returns the fault for a request to `route` at `path`.
  FaultDecision Decide(const std::string& route, const std::string& path);

 private:
  struct Rule {
    std::string route;
    int latency_ms = 0;
    double error_rate = 0;
    int status = 500;
    int retry_after_s = -1;
    double reset_rate = 0;
    double truncate_rate = 0;
    double malformed_rate = 0;
    std::string foreign_next_host;
    int stall_ms = 0;
    std::optional<int64_t> count;
  };

  mutable absl::Mutex mu_;
  std::vector<Rule> rules_ ABSL_GUARDED_BY(mu_);
  uint64_t seed_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_emulator

#endif  // EMULATOR_FAULTS_H_
