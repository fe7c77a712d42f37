// A closed-loop gRPC load client for the flag benchmarks: N threads, each on
// its own channel, call one method back to back for a while, then print
// throughput and latency percentiles as JSON.
//
//   grpc_load --target=127.0.0.1:PORT --method=evaluate_flags|health
//             [--seconds=5] [--threads=8] [--inputs=/tmp/flagbench/inputs.json]
//             [--server_pid=PID]
//             [--paired_target=127.0.0.1:PORT2 [--paired_server_pid=PID2]]
//             [--slice_ms=250] [--warmup_seconds=1]
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
// With --paired_target it measures two servers in one phase, in turns of
// --slice_ms (A B B A A B B A ..., bench/flags/paired_slices.h): each side
// gets --seconds of its own slices, and a slice's calls are all answered
// before the next slice opens. Each thread holds a channel to each server,
// both connected during the warm-up. Both sides then see the same machine
// state, which on this VM drifts over seconds; its output is
// {"pairing": ..., "sides": [target's figures, paired_target's], "slices":
// [[side, seconds, calls, server CPU seconds], ...]}. Without it the output
// is one side's figures.
//
// Besides throughput and latency it prints the CPU time per call of this
// client (all its threads) and, with --server_pid (--paired_server_pid), of
// the server, both over the side's measured slices: on a machine shared with
// other work they say where the time goes more steadily than throughput does.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/flags/paired_slices.h"
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
ABSL_FLAG(std::string, paired_target, "",
          "if set, a second server measured in turns with --target in the same phase");
ABSL_FLAG(int, paired_server_pid, 0, "if set, the second server's pid, for its CPU per call");
ABSL_FLAG(int, slice_ms, 250, "length of one turn (slice) of the load");
ABSL_FLAG(double, warmup_seconds, 1, "slices run first and not counted, about this long");

namespace {

using posthog::v1::EvaluateFlagsRequest;
using posthog::v1::EvaluateFlagsResponse;

std::shared_ptr<grpc::Channel> NewChannel(int index,
                                          const std::string& target = absl::GetFlag(FLAGS_target)) {
  grpc::ChannelArguments args;
  args.SetInt("grpc_load.channel", index);  // Distinct channels, distinct connections.
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
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
  const std::vector<std::string> targets =
      absl::GetFlag(FLAGS_paired_target).empty()
          ? std::vector<std::string>{absl::GetFlag(FLAGS_target)}
          : std::vector<std::string>{absl::GetFlag(FLAGS_target),
                                     absl::GetFlag(FLAGS_paired_target)};
  const int server_pids[2] = {absl::GetFlag(FLAGS_server_pid),
                              absl::GetFlag(FLAGS_paired_server_pid)};
  const int sides = static_cast<int>(targets.size());
  const absl::Duration slice = absl::Milliseconds(std::max(1, absl::GetFlag(FLAGS_slice_ms)));
  const double slice_seconds = absl::ToDoubleSeconds(slice);
  posthog_bench::SliceLedger ledger(
      sides, static_cast<int>(std::ceil(absl::GetFlag(FLAGS_warmup_seconds) / slice_seconds)));
  const int per_side =
      std::max(1, static_cast<int>(std::lround(absl::GetFlag(FLAGS_seconds) / slice_seconds)));

  // Per thread: a channel, stubs and requests per side; latencies per side.
  struct Caller {
    std::unique_ptr<posthog::v1::FlagService::Stub> flags[2];
    std::unique_ptr<grpc::health::v1::Health::Stub> health[2];
    std::vector<EvaluateFlagsRequest> requests;
    std::vector<int64_t> latencies[2];
    std::vector<char> arena_block = std::vector<char>(64 << 10);
    int next = 0;
  };
  std::vector<Caller> callers(threads);
  for (int t = 0; t < threads; ++t) {
    for (int side = 0; side < sides; ++side) {
      auto channel = NewChannel(t, targets[side]);
      callers[t].flags[side] = posthog::v1::FlagService::NewStub(channel);
      callers[t].health[side] = grpc::health::v1::Health::NewStub(channel);
    }
    for (int i = 0; i < 100; ++i) callers[t].requests.push_back(MakeRequest(inputs, t * 100 + i));
  }
  const grpc::health::v1::HealthCheckRequest health_request;

  posthog_bench::SliceHooks hooks;
  hooks.call = [&](int t, int side, bool measured) {
    Caller& caller = callers[t];
    grpc::ClientContext context;
    // Bounded, so that a slice's drain ends even if a server hangs.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status;
    // Replies are parsed into an arena, as a C++ caller that cares about
    // cost parses them: the 50 results are then bump allocations.
    google::protobuf::ArenaOptions arena_options;
    arena_options.initial_block = caller.arena_block.data();
    arena_options.initial_block_size = caller.arena_block.size();
    google::protobuf::Arena arena(arena_options);
    const absl::Time start = absl::Now();
    if (method == "health") {
      auto* response =
          google::protobuf::Arena::CreateMessage<grpc::health::v1::HealthCheckResponse>(&arena);
      status = caller.health[side]->Check(&context, health_request, response);
    } else {
      auto* response = google::protobuf::Arena::CreateMessage<EvaluateFlagsResponse>(&arena);
      status = caller.flags[side]->EvaluateFlags(
          &context, caller.requests[caller.next++ % caller.requests.size()], response);
      if (status.ok() && response->results_size() != expected_results) {
        status = grpc::Status(grpc::StatusCode::INTERNAL, "wrong number of results");
      }
    }
    const absl::Time stop = absl::Now();
    if (!status.ok()) return false;
    if (measured) caller.latencies[side].push_back(absl::ToInt64Nanoseconds(stop - start));
    return true;
  };
  hooks.client_cpu = OwnCpuSeconds;
  hooks.server_cpu = [&](int side) {
    return server_pids[side] > 0 ? ProcessCpuSeconds(server_pids[side]) : -1.0;
  };
  posthog_bench::RunSlices(threads, slice, per_side, hooks, &ledger);

  int64_t errors = 0;  // Warm-up's too: a failing server fails the run.
  for (const auto& s : ledger.warmup()) errors += s.errors;
  std::vector<nlohmann::json> figures;
  for (int side = 0; side < sides; ++side) {
    const posthog_bench::SideTotals totals = ledger.Totals(side);
    errors += totals.errors;
    std::vector<int64_t> all;
    for (const Caller& caller : callers) {
      all.insert(all.end(), caller.latencies[side].begin(), caller.latencies[side].end());
    }
    std::sort(all.begin(), all.end());
    auto at = [&](double p) {
      return all.empty()
                 ? 0.0
                 : all[std::min(all.size() - 1, static_cast<size_t>(all.size() * p))] / 1000.0;
    };
    nlohmann::json out = {
        {"target", targets[side]},        {"method", method},        {"threads", threads},
        {"calls", totals.calls},          {"errors", totals.errors}, {"seconds", totals.seconds},
        {"rps", totals.CallsPerSecond()}, {"p50_us", at(0.5)},       {"p99_us", at(0.99)}};
    if (totals.calls > 0) {
      out["client_cpu_us_per_call"] = totals.client_cpu_seconds * 1e6 / totals.calls;
      if (totals.server_cpu_seconds >= 0) {
        out["server_cpu_us_per_call"] = totals.server_cpu_seconds * 1e6 / totals.calls;
      }
    }
    // What the other side's server used while this one was loaded: its
    // idle cost, which should be about nothing.
    if (sides == 2 && totals.idle_server_cpu_seconds >= 0) {
      out["idle_other_server_cpu_ms"] = totals.idle_server_cpu_seconds * 1e3;
    }
    figures.push_back(std::move(out));
  }
  nlohmann::json out;
  if (sides == 1) {
    out = figures[0];
  } else {
    nlohmann::json slices = nlohmann::json::array();
    for (const auto& s : ledger.warmup()) {
      slices.push_back({s.side, s.seconds, s.calls, s.server_cpu_seconds, "warmup"});
    }
    for (const auto& s : ledger.measured()) {
      slices.push_back({s.side, s.seconds, s.calls, s.server_cpu_seconds});
    }
    out = {{"pairing", absl::StrCat("turns of ", absl::GetFlag(FLAGS_slice_ms),
                                    " ms between the two servers (A B B A ...), each drained "
                                    "before the next, ",
                                    ledger.warmup_slices(), " warm-up turns discarded, ", per_side,
                                    " measured turns per side")},
           {"slice_ms", absl::GetFlag(FLAGS_slice_ms)},
           {"sides", figures},
           {"slices", slices}};
  }
  std::printf("%s\n", out.dump().c_str());
  return errors == 0 ? 0 : 1;
}
