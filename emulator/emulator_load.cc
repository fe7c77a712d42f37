// emulator_load: measures the emulator's /batch/ ingestion rate. Sends
// gzip-compressed batches of distinct events over N keep-alive connections
// for a fixed duration and prints events/s.
//
//   emulator_load --port=8010 --token=phc_... [--connections=4]
//                 [--batch=500] [--seconds=5] [--users=1000]

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "emulator/http_util.h"
#include "httplib.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Emulator host.");
ABSL_FLAG(int, port, 8010, "Emulator port.");
ABSL_FLAG(std::string, token, "", "Project API key (phc_...).");
ABSL_FLAG(int, connections, 4, "Concurrent keep-alive connections.");
ABSL_FLAG(int, batch, 500, "Events per /batch/ request.");
ABSL_FLAG(int, seconds, 5, "Duration of the run.");
ABSL_FLAG(int, users, 1000, "Distinct ids to spread events over.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int connections = absl::GetFlag(FLAGS_connections);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(absl::GetFlag(FLAGS_seconds));
  std::atomic<long> events{0};
  std::atomic<long> failures{0};
  std::atomic<long> bytes{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client(absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port));
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      long seq = 0;
      const int users = absl::GetFlag(FLAGS_users);
      while (std::chrono::steady_clock::now() < deadline) {
        // Each request carries new uuids, so nothing is a duplicate. The
        // body is built with plain string appends and gzip level 1 to keep
        // the client's share of the (shared) cores small.
        std::string body =
            absl::StrFormat("{\"api_key\":\"%s\",\"historical_migration\":false,\"batch\":[",
                            absl::GetFlag(FLAGS_token));
        for (int i = 0; i < batch; ++i, ++seq) {
          absl::StrAppendFormat(&body,
                                "%s{\"event\":\"load test\",\"distinct_id\":\"user-%d\","
                                "\"uuid\":\"%08x-0000-4000-8000-%012x\","
                                "\"timestamp\":\"2026-01-02T03:04:05.000Z\",\"properties\":"
                                "{\"$lib\":\"emulator_load\",\"amount\":%d,\"plan\":\"pro\","
                                "\"$current_url\":\"https://example.com/checkout\"}}",
                                i == 0 ? "" : ",", static_cast<int>(seq % users), c, seq,
                                static_cast<int>(seq % 100));
        }
        body += "]}";
        const std::string gz = posthog_emulator::GzipCompress(body, 1);
        httplib::Headers headers = {{"Content-Encoding", "gzip"}};
        auto res = client.Post("/batch/", headers, gz, "application/json");
        if (res && res->status == 200) {
          events += batch;
          bytes += gz.size();
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << absl::StrFormat(
      "events=%d seconds=%.2f events_per_second=%.0f "
      "failed_requests=%d gzip_mb=%.1f connections=%d batch=%d\n",
      events.load(), secs, events.load() / secs, failures.load(), bytes.load() / 1e6, connections,
      batch);
  return failures.load() == 0 ? 0 : 1;
}
