// A closed-loop gRPC load client for the flag benchmarks: N threads, each on
// its own channel, call one method back to back for a while, then print
// throughput and latency percentiles as JSON.
//
//   grpc_load --target=127.0.0.1:PORT --method=evaluate_flags|health
//             [--seconds=5] [--threads=8] [--inputs=/tmp/flagbench/inputs.json]
//             [--server_pid=PID]
//   grpc_load --target=... --method=values   # prints the 50 flags' values
//                                            # for distinct_id_0..199
//   grpc_load --target=... --method=save_reply --out=FILE
//       # writes distinct_id_0's EvaluateFlagsResponse, for
//       # bench/flags/reply_bound_server
//
// `evaluate_flags` is EvaluateFlags for every flag (only_local) with the
// benchmark's person properties; a reply without every flag counts as an
// error. `health` is grpc.health.v1.Health/Check, the no-op ceiling on the
// same server (both are served by gRPC's callback API).
//
// Besides throughput and latency it prints the CPU time per call of this
// client (all its threads) and, with --server_pid, of the server, both over
// the measured window: on a machine shared with other work they say where
// the time goes more steadily than throughput does.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/arena.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/posthog/json_struct.h"

ABSL_FLAG(std::string, target, "", "host:port of the gateway");
ABSL_FLAG(std::string, method, "evaluate_flags", "evaluate_flags, health or values");
ABSL_FLAG(int, seconds, 5, "how long to load");
ABSL_FLAG(int, threads, 8, "concurrent callers");
ABSL_FLAG(std::string, inputs, "/tmp/flagbench/inputs.json", "bench/flags/make_seed.py output");
ABSL_FLAG(int, keys, 0, "if set, ask for only the first N flags (by name) instead of every flag");
ABSL_FLAG(int, server_pid, 0, "if set, also report this process's CPU time per call");
ABSL_FLAG(std::string, out, "", "save_reply: where to write the reply");

namespace {

using posthog::v1::EvaluateFlagsRequest;
using posthog::v1::EvaluateFlagsResponse;

std::shared_ptr<grpc::Channel> NewChannel(int index) {
  grpc::ChannelArguments args;
  args.SetInt("grpc_load.channel", index);  // Distinct channels, distinct connections.
  return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(),
                                   args);
}

EvaluateFlagsRequest MakeRequest(const nlohmann::json& inputs, int i) {
  EvaluateFlagsRequest request;
  request.mutable_context()->set_distinct_id(absl::StrCat("distinct_id_", i));
  *request.mutable_context()->mutable_person_properties() =
      posthog_gateway::StructFromJson(inputs["person_properties"]);
  request.mutable_options()->set_only_local(true);
  const int keys = absl::GetFlag(FLAGS_keys);
  for (int k = 0; k < keys && k < static_cast<int>(inputs["flag_keys"].size()); ++k) {
    request.add_keys(inputs["flag_keys"][k].get<std::string>());
  }
  return request;
}

// CPU seconds (user + system) this process has used, all threads.
double OwnCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// CPU seconds `pid` has used (utime + stime of /proc/PID/stat), or -1.
double ProcessCpuSeconds(int pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');  // The command name may hold spaces.
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime.
  }
  return ticks / sysconf(_SC_CLK_TCK);
}

int Values(const nlohmann::json& inputs) {
  auto stub = posthog::v1::FlagService::NewStub(NewChannel(0));
  nlohmann::json out = nlohmann::json::object();
  for (int i = 0; i < 200; ++i) {
    grpc::ClientContext context;
    EvaluateFlagsResponse response;
    grpc::Status status = stub->EvaluateFlags(&context, MakeRequest(inputs, i), &response);
    if (!status.ok()) {
      std::fprintf(stderr, "EvaluateFlags: %s\n", status.error_message().c_str());
      return 1;
    }
    nlohmann::json values = nlohmann::json::object();
    for (const auto& [key, result] : response.results()) {
      if (result.error_code() != posthog::v1::FLAG_ERROR_CODE_UNSPECIFIED) {
        values[key] = "error: " + result.error_message();
      } else if (!result.enabled()) {
        values[key] = false;
      } else if (!result.variant().empty()) {
        values[key] = result.variant();
      } else {
        values[key] = true;
      }
    }
    out[absl::StrCat("distinct_id_", i)] = std::move(values);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int SaveReply(const nlohmann::json& inputs) {
  auto stub = posthog::v1::FlagService::NewStub(NewChannel(0));
  grpc::ClientContext context;
  EvaluateFlagsResponse response;
  grpc::Status status = stub->EvaluateFlags(&context, MakeRequest(inputs, 0), &response);
  if (!status.ok()) {
    std::fprintf(stderr, "EvaluateFlags: %s\n", status.error_message().c_str());
    return 1;
  }
  std::ofstream(absl::GetFlag(FLAGS_out), std::ios::binary) << response.SerializeAsString();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::ifstream file(absl::GetFlag(FLAGS_inputs));
  std::stringstream text;
  text << file.rdbuf();
  const nlohmann::json inputs = nlohmann::json::parse(text.str());
  const std::string method = absl::GetFlag(FLAGS_method);
  if (method == "values") return Values(inputs);
  if (method == "save_reply") return SaveReply(inputs);

  const int threads = absl::GetFlag(FLAGS_threads);
  const int all_keys = static_cast<int>(inputs["flag_keys"].size());
  const int expected_results =
      absl::GetFlag(FLAGS_keys) > 0 ? std::min(absl::GetFlag(FLAGS_keys), all_keys) : all_keys;
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::vector<std::vector<int64_t>> latencies(threads);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> workers;
  const absl::Time warmup_end = absl::Now() + absl::Seconds(1);
  const absl::Time end = warmup_end + duration;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto channel = NewChannel(t);
      auto flags = posthog::v1::FlagService::NewStub(channel);
      auto health = grpc::health::v1::Health::NewStub(channel);
      std::vector<EvaluateFlagsRequest> requests;
      for (int i = 0; i < 100; ++i) requests.push_back(MakeRequest(inputs, t * 100 + i));
      grpc::health::v1::HealthCheckRequest health_request;
      std::vector<char> arena_block(64 << 10);
      google::protobuf::ArenaOptions arena_options;
      arena_options.initial_block = arena_block.data();
      arena_options.initial_block_size = arena_block.size();
      for (int i = 0;; ++i) {
        const absl::Time start = absl::Now();
        if (start >= end) break;
        grpc::ClientContext context;
        grpc::Status status;
        // Replies are parsed into an arena, as a C++ caller that cares about
        // cost parses them: the 50 results are then bump allocations.
        google::protobuf::Arena arena(arena_options);
        if (method == "health") {
          auto* response =
              google::protobuf::Arena::CreateMessage<grpc::health::v1::HealthCheckResponse>(&arena);
          status = health->Check(&context, health_request, response);
        } else {
          auto* response = google::protobuf::Arena::CreateMessage<EvaluateFlagsResponse>(&arena);
          status = flags->EvaluateFlags(&context, requests[i % requests.size()], response);
          if (status.ok() && response->results_size() != expected_results) {
            status = grpc::Status(grpc::StatusCode::INTERNAL, "wrong number of results");
          }
        }
        const absl::Time stop = absl::Now();
        if (!status.ok()) {
          ++errors;
          continue;
        }
        if (start >= warmup_end) latencies[t].push_back(absl::ToInt64Nanoseconds(stop - start));
      }
    });
  }
  // CPU over the measured window only: sampled when the warm-up ends.
  const int server_pid = absl::GetFlag(FLAGS_server_pid);
  absl::SleepFor(warmup_end - absl::Now());
  const double client_cpu_start = OwnCpuSeconds();
  const double server_cpu_start = server_pid > 0 ? ProcessCpuSeconds(server_pid) : -1;
  for (auto& worker : workers) worker.join();
  const double client_cpu = OwnCpuSeconds() - client_cpu_start;
  const double server_cpu = server_pid > 0 ? ProcessCpuSeconds(server_pid) - server_cpu_start : -1;
  std::vector<int64_t> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto at = [&](double p) {
    return all.empty()
               ? 0.0
               : all[std::min(all.size() - 1, static_cast<size_t>(all.size() * p))] / 1000.0;
  };
  nlohmann::json out = {{"method", method},
                        {"threads", threads},
                        {"calls", all.size()},
                        {"errors", errors.load()},
                        {"rps", all.size() / absl::ToDoubleSeconds(duration)},
                        {"p50_us", at(0.5)},
                        {"p99_us", at(0.99)}};
  if (!all.empty()) {
    out["client_cpu_us_per_call"] = client_cpu * 1e6 / all.size();
    if (server_pid > 0) out["server_cpu_us_per_call"] = server_cpu * 1e6 / all.size();
  }
  std::printf("%s\n", out.dump().c_str());
  return errors.load() == 0 ? 0 : 1;
}
