// capture_ingest_bench: times IngestCapture alone (no HTTP), single thread,
// to separate parsing/storage cost from the server's. Prints events/s.

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "emulator/capture_handler.h"
#include "emulator/state.h"
#include "nlohmann/json.hpp"

int main() {
  posthog_emulator::EmulatorState state;
  nlohmann::json seed = {{"organizations", {{{"id", "org"}, {"name", "Org"}}}},
                         {"projects", {{{"id", 1}, {"api_token", "phc_bench"}}}}};
  if (!state.LoadSeed(seed).ok()) return 1;
  const int kBatch = 500;
  const int kRounds = 200;
  long seq = 0;
  double total = 0;
  for (int r = 0; r < kRounds; ++r) {
    std::string body = "{\"api_key\":\"phc_bench\",\"batch\":[";
    for (int i = 0; i < kBatch; ++i, ++seq) {
      absl::StrAppendFormat(&body,
                            "%s{\"event\":\"load test\",\"distinct_id\":\"user-%d\","
                            "\"uuid\":\"00000000-0000-4000-8000-%012x\","
                            "\"timestamp\":\"2026-01-02T03:04:05.000Z\",\"properties\":"
                            "{\"$lib\":\"bench\",\"amount\":%d,\"plan\":\"pro\","
                            "\"$current_url\":\"https://example.com/checkout\"}}",
                            i == 0 ? "" : ",", static_cast<int>(seq % 1000), seq,
                            static_cast<int>(seq % 100));
    }
    body += "]}";
    if (r == 0) {
      auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < 20; ++k) {
        auto j = nlohmann::json::parse(body);
        if (k == 0) {
          auto t1 = std::chrono::steady_clock::now();
          size_t n = 0;
          for (auto& e : j["batch"]) n += e.dump().size();
          std::printf("dump_us_per_event=%.2f (n=%zu)\n",
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() *
                          1e6 / kBatch,
                      n);
        }
      }
      std::printf("parse_us_per_event=%.2f\n",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() *
                      1e6 / (20.0 * kBatch));
    }
    auto start = std::chrono::steady_clock::now();
    auto result = posthog_emulator::IngestCapture(state, body);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!result.ok()) return 1;
  }
  std::printf("events=%ld seconds=%.3f events_per_second=%.0f\n", seq, total, seq / total);
  return 0;
}
