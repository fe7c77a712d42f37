// Prints the latency one paced request's turn of the shared budget costs
// (FleetCoordinator::TakeTurn: one EVAL of the budget script), p50 and p99,
// against a Redis at --redis=HOST:PORT. Bounded: --turns calls, a budget
// large enough that none waits. Started by bench/fleet/bench.py.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/fleet/fleet_coordinator.h"

ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "host:port of the Redis to measure against.");
ABSL_FLAG(int, turns, 5000, "How many turns to take (at most 100000).");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_redis);
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    std::fprintf(stderr, "--redis must be host:port\n");
    return 2;
  }
  const int turns = std::clamp(absl::GetFlag(FLAGS_turns), 1, 100000);
  posthog_gateway::FleetOptions options;
  options.redis.host = address.substr(0, colon);
  options.redis.port = port;
  options.key_prefix = "posthog-gateway-bench";
  options.replica_id = "bench";
  posthog_gateway::FleetCoordinator fleet(options);
  // PostHog's persons windows, scaled up so that no turn waits.
  const std::vector<posthog_gateway::RateWindow> windows = {{1000000, absl::Minutes(1)},
                                                            {10000000, absl::Hours(1)}};
  std::vector<double> micros;
  micros.reserve(turns);
  int failed = 0;
  for (int i = 0; i < turns; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<absl::Duration> wait =
        fleet.TakeTurn("persons:bench", windows, absl::Milliseconds(500));
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    if (!wait.ok() || *wait > absl::ZeroDuration()) ++failed;
  }
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  std::printf(
      "redis turn latency: %d turns, p50 %.0f us, p99 %.0f us, max %.0f us, %d not granted\n",
      turns, at(0.5), at(0.99), micros.back(), failed);
  return failed == 0 ? 0 : 1;
}
