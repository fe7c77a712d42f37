// The PostHog gRPC gateway's process: parses flags, hands the configuration
// to Gateway (server/gateway.h: start-up, readiness, reload and shutdown
// order), and takes the shutdown signals.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/log.h"
#include "server/config/config.h"
#include "server/gateway.h"

ABSL_FLAG(std::string, config, "",
          "Path of the JSON configuration; defaults to $POSTHOG_GATEWAY_CONFIG, "
          "then /etc/posthog-gateway/config.json.");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, -1, "Port to listen on (0 picks one); overrides server.port.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving.");
ABSL_FLAG(int, ofrep_port, -2,
          "OFREP (OpenFeature Remote Evaluation Protocol, HTTP) port: -1 off, 0 any free "
          "port; overrides openfeature.ofrep_port (default: the configuration's, off)");
ABSL_FLAG(int, admin_port, -1,
          "Port of the admin HTTP server (GET /metrics in Prometheus format, "
          "GET /healthz); -1 disables it, 0 picks one.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "TLS on the gRPC port: the PEM certificate chain (with --tls_key_file); "
          "overrides server.tls.cert_file.");
ABSL_FLAG(std::string, tls_key_file, "",
          "TLS: the PEM private key; overrides server.tls.key_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "TLS: callers must present a certificate this PEM CA bundle signed (mTLS); "
          "overrides server.tls.client_ca_file.");
ABSL_FLAG(int, tls_plaintext_health_port, -2,
          "TLS: a plaintext port serving only grpc.health.v1.Health, for the kubelet's "
          "probes: -1 none, 0 any free port (logged); overrides "
          "server.tls.plaintext_health_port.");
ABSL_FLAG(std::string, caller_identity, "",
          "Whose word to take for the caller's identity: none, istio, linkerd or tls; "
          "overrides server.caller_identity.");
ABSL_FLAG(std::string, grants_file, "",
          "The callers' grants, {\"callers\": [...]}; overrides authorization.grants_file.");
ABSL_FLAG(std::string, bearer_tokens_file, "",
          "Bearer tokens per calling service, `<caller> <sha256 hex>` a line; overrides "
          "authorization.bearer_tokens_file.");
ABSL_FLAG(std::string, redis_address, "",
          "host:port of the fleet's Redis (7.x); sets redis.address, turning fleet "
          "coordination on (docs/fleet.md).");
ABSL_FLAG(std::string, redis_password_file, "",
          "The file holding Redis' AUTH password; overrides redis.password (needs a "
          "redis section or --redis_address).");
ABSL_FLAG(std::string, resume_token_secret_file, "",
          "The secret every replica shares to sign resume tokens (16 bytes or more); "
          "overrides paging.resume_token_secret.");
ABSL_FLAG(int, channelz_port, -1,
          "Port of gRPC channelz (grpc.channelz.v1, for grpcdebug), on 127.0.0.1 "
          "only; -1 disables it, 0 picks one.");
ABSL_FLAG(absl::Duration, drain_delay, absl::Seconds(5),
          "On SIGTERM, how long readiness reports NOT_SERVING before the server "
          "stops accepting calls, so that endpoints can update.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(20),
          "On SIGTERM, how long calls in flight get to finish. A second SIGTERM "
          "or SIGINT ends them at once.");
ABSL_FLAG(absl::Duration, termination_grace, absl::Seconds(40),
          "The time between SIGTERM and SIGKILL (Kubernetes' "
          "terminationGracePeriodSeconds); see --spool_send_share.");
ABSL_FLAG(double, spool_send_share, 0.8,
          "On SIGTERM, delivery keeps sending the capture spool to PostHog until it is "
          "empty or this share of --termination_grace has passed since the signal "
          "(after the drain and the calls in flight); what is left stays on disk for the "
          "next start or a --drain_spool run. 0 stops delivery with the server.");
ABSL_FLAG(std::string, drain_spool, "",
          "Delivers the capture spool in this directory (left by another pod) to PostHog "
          "with the configuration's projects and keys, then exits: 0 once it is empty, 1 "
          "if events are left at --drain_spool_timeout. Serves nothing.");
ABSL_FLAG(absl::Duration, drain_spool_timeout, absl::Minutes(10),
          "--drain_spool: how long to keep sending before giving up (exit 1).");
ABSL_FLAG(std::string, log_level, "info", "Lowest severity logged: debug, info, warning or error.");

namespace posthog_gateway {
namespace {

std::string ConfigPath() {
  std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    const char* env = std::getenv("POSTHOG_GATEWAY_CONFIG");
    path = env != nullptr ? env : "/etc/posthog-gateway/config.json";
  }
  return path;
}

// ApplyAuthorizationFlags lays --caller_identity and --grants_file over the
// configuration, so that a deployment (a Kustomize overlay) can turn
// identity and grants on without editing the configuration file.
absl::Status ApplyAuthorizationFlags(GatewayConfig& config) {
  if (const std::string source = absl::GetFlag(FLAGS_caller_identity); !source.empty()) {
    const std::map<std::string, CallerIdentitySource> sources = {
        {"none", CallerIdentitySource::kNone},
        {"istio", CallerIdentitySource::kIstio},
        {"linkerd", CallerIdentitySource::kLinkerd},
        {"tls", CallerIdentitySource::kTls}};
    auto it = sources.find(source);
    if (it == sources.end()) {
      return absl::InvalidArgumentError("--caller_identity: must be none, istio, linkerd or tls");
    }
    config.server.caller_identity = it->second;
  }
  if (const std::string grants = absl::GetFlag(FLAGS_grants_file); !grants.empty()) {
    config.authorization.grants_file = grants;
  }
  if (const std::string tokens = absl::GetFlag(FLAGS_bearer_tokens_file); !tokens.empty()) {
    config.authorization.bearer_tokens_file = tokens;
  }
  if (config.server.caller_identity == CallerIdentitySource::kTls &&
      (!config.server.tls.has_value() || config.server.tls->client_ca_file.empty())) {
    return absl::InvalidArgumentError(
        "caller identity \"tls\" needs client certificates (server.tls.client_ca_file or "
        "--tls_client_ca_file)");
  }
  return absl::OkStatus();
}

// ApplyFleetFlags lays --redis_address, --redis_password_file and
// --resume_token_secret_file over the configuration, so that a deployment (a
// Kustomize component) can point the fleet at its Redis and share the resume
// token secret without editing the configuration file.
absl::Status ApplyFleetFlags(GatewayConfig& config) {
  if (const std::string address = absl::GetFlag(FLAGS_redis_address); !address.empty()) {
    const size_t colon = address.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 || port > 65535) {
      return absl::InvalidArgumentError("--redis_address: must be host:port");
    }
    if (!config.redis.has_value()) config.redis.emplace();
    config.redis->address = address;
  }
  if (const std::string password = absl::GetFlag(FLAGS_redis_password_file); !password.empty()) {
    if (!config.redis.has_value()) {
      return absl::InvalidArgumentError(
          "--redis_password_file needs a Redis address (--redis_address or redis.address)");
    }
    config.redis->password = KeySource{password, ""};
  }
  if (const std::string secret = absl::GetFlag(FLAGS_resume_token_secret_file); !secret.empty()) {
    config.paging.resume_token_secret = KeySource{secret, ""};
  }
  return absl::OkStatus();
}

// ApplyTlsFlags lays the --tls_* flags over server.tls, so that a
// deployment (a Kustomize component) can turn TLS on without editing the
// configuration file.
absl::Status ApplyTlsFlags(ServerConfig& server) {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert_file);
  const std::string key = absl::GetFlag(FLAGS_tls_key_file);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca_file);
  const int health_port = absl::GetFlag(FLAGS_tls_plaintext_health_port);
  // Below -1: not given (the flag's default).
  if (cert.empty() && key.empty() && client_ca.empty() && health_port < -1) {
    return absl::OkStatus();
  }
  ServerTlsConfig tls = server.tls.value_or(ServerTlsConfig{});
  if (!cert.empty()) tls.cert_file = cert;
  if (!key.empty()) tls.key_file = key;
  if (!client_ca.empty()) tls.client_ca_file = client_ca;
  if (health_port >= -1) tls.plaintext_health_port = health_port;
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs a certificate and its key (--tls_cert_file and --tls_key_file, or "
        "server.tls)");
  }
  if (tls.plaintext_health_port > 65535) {
    return absl::InvalidArgumentError("--tls_plaintext_health_port: must be at most 65535");
  }
  server.tls = std::move(tls);
  return absl::OkStatus();
}

bool WritePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream file(temp);
    file << port << "\n";
    if (!file) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

bool SetLogLevel(const std::string& level) {
  if (level == "debug")
    SetMinLogSeverity(LogSeverity::kDebug);
  else if (level == "info")
    SetMinLogSeverity(LogSeverity::kInfo);
  else if (level == "warning")
    SetMinLogSeverity(LogSeverity::kWarning);
  else if (level == "error")
    SetMinLogSeverity(LogSeverity::kError);
  else
    return false;
  return true;
}

int Run() {
  if (!SetLogLevel(absl::GetFlag(FLAGS_log_level))) {
    LogError("--log_level must be debug, info, warning or error");
    return 2;
  }
  const std::string config_path = ConfigPath();
  absl::StatusOr<GatewayConfig> config = LoadConfigFile(config_path);
  if (!config.ok()) {
    LogError("cannot load configuration",
             {{"path", config_path}, {"error", std::string(config.status().message())}});
    return 2;
  }
  if (absl::Status fleet = ApplyFleetFlags(*config); !fleet.ok()) {
    LogError("bad fleet flags", {{"error", std::string(fleet.message())}});
    return 2;
  }
  if (const std::string dir = absl::GetFlag(FLAGS_drain_spool); !dir.empty()) {
    return DrainSpool(*std::move(config), dir, absl::GetFlag(FLAGS_drain_spool_timeout));
  }
  GatewayOptions options;
  options.spool_send_share = absl::GetFlag(FLAGS_spool_send_share);
  if (!(options.spool_send_share >= 0 && options.spool_send_share <= 1)) {
    LogError("--spool_send_share must be between 0 and 1");
    return 2;
  }
  if (absl::GetFlag(FLAGS_port) >= 0) config->server.port = absl::GetFlag(FLAGS_port);
  if (absl::Status tls = ApplyTlsFlags(config->server); !tls.ok()) {
    LogError("bad TLS flags", {{"error", std::string(tls.message())}});
    return 2;
  }
  if (absl::Status authz = ApplyAuthorizationFlags(*config); !authz.ok()) {
    LogError("bad authorization settings", {{"error", std::string(authz.message())}});
    return 2;
  }
  options.host = absl::GetFlag(FLAGS_host);
  options.ofrep_port = absl::GetFlag(FLAGS_ofrep_port) >= -1 ? absl::GetFlag(FLAGS_ofrep_port)
                                                             : config->openfeature.ofrep_port;
  options.admin_port = absl::GetFlag(FLAGS_admin_port);
  options.channelz_port = absl::GetFlag(FLAGS_channelz_port);
  options.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.termination_grace = absl::GetFlag(FLAGS_termination_grace);

  // Create and Start log why they fail.
  absl::StatusOr<std::unique_ptr<Gateway>> gateway =
      Gateway::Create(*std::move(config), std::move(options));
  if (!gateway.ok()) return ExitCode(gateway.status());
  absl::StatusOr<int> port = (*gateway)->Start();
  if (!port.ok()) return ExitCode(port.status());
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file);
      !port_file.empty() && !WritePortFile(port_file, *port)) {
    LogError("cannot write the port file", {{"path", port_file}});
    return 1;
  }

  // SIGTERM and SIGINT are blocked in every thread (see main) and taken here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LogInfo("shutting down", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});

  // A second signal while draining cuts the drain short (an impatient
  // operator, or a supervisor escalating).
  std::thread second_signal([&signals] {
    int again = 0;
    sigwait(&signals, &again);
    LogWarning("second signal: exiting without waiting for calls in flight");
    std::_Exit(1);
  });
  second_signal.detach();
  // Not-serving, drain, calls in flight, then the spool's share of the
  // termination grace (server/gateway.h).
  (*gateway)->Shutdown();
  return 0;
}

}  // namespace
}  // namespace posthog_gateway

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The PostHog gRPC gateway.\n"
      "Usage: posthog_gateway --config=PATH [--port=N] [--port_file=PATH]");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detection on: every Lock then updates a process-wide lock graph under a
  // global lock (about 3 % of an EvaluateFlags call's CPU, and a point of
  // contention between calls). Tests keep it on; the server turns it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Block the shutdown signals before any thread starts, so every thread
  // inherits the mask and only Run's sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return posthog_gateway::Run();
}
