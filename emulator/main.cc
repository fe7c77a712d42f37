// posthog_emulator: an in-memory PostHog for tests, benchmarks and local
// runs. Wiring only; see emulator/README.md.

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "emulator/server.h"
#include "emulator/state.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, seed, "", "Path of the seed JSON (required).");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(int, port, 8010, "Port to listen on; 0 picks a free port.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written here (atomically) once listening.");
ABSL_FLAG(int, threads, 32, "HTTP worker threads (each serves one keep-alive connection).");
ABSL_FLAG(std::string, rate_limits, "",
          "on|off: force PostHog's rate limits; default follows the seed (off).");
ABSL_FLAG(std::string, faults, "",
          "Fault rules: a JSON document, or the path of a file holding one.");

namespace {

void Log(const std::string& line) { std::cerr << "posthog_emulator: " << line << "\n"; }

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << port << "\n";
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using posthog_emulator::EmulatorServer;
  using posthog_emulator::EmulatorState;

  // Block SIGINT/SIGTERM in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string seed_path = absl::GetFlag(FLAGS_seed);
  if (seed_path.empty()) {
    Log("--seed=PATH is required");
    return 2;
  }
  std::string seed_text;
  if (!ReadFile(seed_path, &seed_text)) {
    Log("cannot read seed " + seed_path);
    return 2;
  }
  nlohmann::json seed = nlohmann::json::parse(seed_text, nullptr, false);
  if (seed.is_discarded()) {
    Log("seed " + seed_path + " is not valid JSON");
    return 2;
  }
  EmulatorState state;
  const std::string rate_limits = absl::GetFlag(FLAGS_rate_limits);
  if (rate_limits == "on" || rate_limits == "off") {
    state.ForceRateLimits(rate_limits == "on");
  } else if (!rate_limits.empty()) {
    Log("--rate_limits must be on or off");
    return 2;
  }
  if (absl::Status status = state.LoadSeed(seed); !status.ok()) {
    Log(std::string(status.message()));
    return 2;
  }
  auto directory = state.directory();
  Log(absl::StrCat("seed loaded from ", seed_path, ": ", directory->Projects().size(),
                   " project(s)"));
  const std::string faults = absl::GetFlag(FLAGS_faults);
  if (!faults.empty()) {
    std::string text = faults;
    if (!absl::StartsWith(faults, "[") && !absl::StartsWith(faults, "{") &&
        !ReadFile(faults, &text)) {
      Log("cannot read faults " + faults);
      return 2;
    }
    nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
    absl::Status status = config.is_discarded() ? absl::InvalidArgumentError("faults: not JSON")
                                                : state.faults().Configure(config);
    if (!status.ok()) {
      Log(std::string(status.message()));
      return 2;
    }
    Log(absl::StrCat("fault rules: ", state.faults().Config()["rules"].size()));
  }
  Log(absl::StrCat("rate limits: ", state.rate_limiter().config().enabled ? "on" : "off"));

  posthog_emulator::ServerOptions options;
  options.threads = absl::GetFlag(FLAGS_threads);
  EmulatorServer server(&state, options);
  const std::string host = absl::GetFlag(FLAGS_host);
  absl::StatusOr<int> port = server.Bind(host, absl::GetFlag(FLAGS_port));
  if (!port.ok()) {
    Log(std::string(port.status().message()));
    return 1;
  }
  Log(absl::StrCat("threads: ", options.threads));

  std::atomic<bool> done{false};
  std::atomic<bool> signaled{false};
  std::thread signal_thread([&server, &done, &signaled, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    signaled = true;
    if (done) return;
    Log(absl::StrCat("signal ", sig, ", stopping"));
    server.Stop();
    // Serve() returns once every worker is idle; a client holding an idle
    // keep-alive connection would delay that by the keep-alive timeout, so
    // give in-flight requests a moment and then leave.
    for (int i = 0; i < 50 && !done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!done) {
      Log("stopped");
      std::_Exit(0);
    }
  });
  std::thread announce([&server, &port, &done] {
    if (!server.WaitUntilServing(&done)) return;
    Log(absl::StrCat("listening on http://", absl::GetFlag(FLAGS_host), ":", *port));
    const std::string port_file = absl::GetFlag(FLAGS_port_file);
    if (!port_file.empty() && !WritePortFile(port_file, *port)) {
      Log("cannot write port file " + port_file);
    }
  });
  const bool ok = server.Serve();
  done = true;
  announce.join();
  // Wake the signal thread if Serve() ended on its own.
  if (!signaled) kill(getpid(), SIGTERM);
  signal_thread.join();
  Log("stopped");
  return ok ? 0 : 1;
}
