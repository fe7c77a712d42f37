// The PostHog gRPC gateway: wires configuration, keys, the HTTP client, the
// PostHog clients and the gRPC services together, then serves until SIGTERM.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/group.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/authz/audit_log.h"
#include "server/authz/authorizer.h"
#include "server/authz/bearer_tokens.h"
#include "server/capture/capture_pipeline.h"
#include "server/capture/flag_called_sink.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/flags/definitions_store.h"
#include "server/fleet/fleet_coordinator.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/observability_interceptor.h"
#include "server/grpc/stream_limits.h"
#include "server/http/curl_http_client.h"
#include "server/http/observed_http_client.h"
#include "server/observability/admin_server.h"
#include "server/observability/channelz_server.h"
#include "server/observability/metrics.h"
#include "server/observability/process_metrics.h"
#include "server/openfeature/ofrep_server.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/capture_service.h"
#include "server/service/flag_service.h"
#include "server/service/flagd_service.h"
#include "server/service/group_service.h"
#include "server/service/person_service.h"
#include "server/service/user_service.h"

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
ABSL_FLAG(int, tls_plaintext_health_port, -1,
          "TLS: a plaintext port serving only grpc.health.v1.Health, for the kubelet's "
          "probes; overrides server.tls.plaintext_health_port.");
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

// ObserveCapture exposes the capture pipeline's state on the admin port. The
// pipeline and sinks must outlive every Expose (the admin server is declared
// after them in main, so it stops first).
void ObserveCapture(const CapturePipeline& capture,
                    const std::vector<std::unique_ptr<CaptureFlagCalledSink>>& flag_sinks,
                    MetricsRegistry* metrics) {
  metrics->AddObserved("posthog_gateway_capture_spool_bytes",
                       "Bytes in the capture spool: events not yet accepted by PostHog.", "gauge",
                       {}, [&capture] {
                         return MetricReading{{{}, static_cast<double>(capture.spool_bytes())}};
                       });
  metrics->AddObserved(
      "posthog_gateway_capture_replayed_records",
      "Spooled events found at start-up and sent again.", "gauge", {}, [&capture] {
        return MetricReading{{{}, static_cast<double>(capture.replayed_records())}};
      });
  metrics->AddObserved(
      "posthog_gateway_capture_spool_damaged_segments",
      "Spool segments found damaged at start-up (their intact records were kept).", "gauge", {},
      [&capture] {
        return MetricReading{{{}, static_cast<double>(capture.damaged_segments())}};
      });
  metrics->AddObserved("posthog_gateway_capture_dead_letters_total",
                       "Events PostHog refused for good, written to the dead-letter file.",
                       "counter", {}, [&capture] {
                         return MetricReading{{{}, static_cast<double>(capture.dead_letters())}};
                       });
  metrics->AddObserved(
      "posthog_gateway_capture_dead_letters_lost_total",
      "Dead letters dropped when the dead-letter file's rotation replaced the older file.",
      "counter", {}, [&capture] {
        return MetricReading{{{}, static_cast<double>(capture.dead_letters_lost())}};
      });
  metrics->AddObserved("posthog_gateway_capture_project_paused",
                       "1 while PostHog refuses the project's API key (its events stay spooled).",
                       "gauge", {"project"}, [&capture] {
                         MetricReading reading;
                         for (const std::string& alias : capture.PausedProjects())
                           reading.push_back({{alias}, 1});
                         return reading;
                       });
  metrics->AddObserved(
      "posthog_gateway_flag_called_dropped_total",
      "$feature_flag_called events dropped (queue full or refused by the pipeline).", "counter",
      {"project"}, [&flag_sinks] {
        MetricReading reading;
        for (const auto& sink : flag_sinks) {
          reading.push_back({{sink->project()}, static_cast<double>(sink->dropped())});
        }
        return reading;
      });
}

// ObserveUpstream exposes the requests PostHogClient refused to send (off
// the personal key's allow-list, or a target not built by UpstreamUrl), by
// project and reason: any of them is a bug or an attack worth an alert.
void ObserveUpstream(const ProjectRegistry& projects, MetricsRegistry* metrics) {
  metrics->AddObserved(
      "posthog_gateway_upstream_refused_total",
      "Requests to PostHog refused before sending (reason: target_not_canonical, "
      "personal_key_off_app_host, personal_key_route_not_allowed).",
      "counter", {"project", "reason"}, [&projects] {
        MetricReading reading;
        for (const PostHogClient* client : projects.Clients()) {
          for (const auto& [reason, count] : client->RefusedRequests()) {
            reading.push_back({{client->project().alias, reason}, static_cast<double>(count)});
          }
        }
        return reading;
      });
}

// ObserveFlags exposes each project's flag definitions on the admin port:
// how many flags, how long since PostHog last confirmed them, and whether
// they are stale (the last refresh failed) or cleared by PostHog's quota
// limit (a project that never loaded has no age); and how many callers watch
// them. The stores and the service must outlive every Expose, like the
// capture pipeline above.
void ObserveFlags(const std::map<std::string, FlagProject>& flag_projects,
                  const FlagServiceImpl* flag_service, MetricsRegistry* metrics) {
  // Reads one figure of each project's current snapshot.
  using Figure = std::function<std::optional<double>(const flags::DefinitionsSnapshot&)>;
  auto each_project = [&flag_projects](Figure figure) {
    return [&flag_projects, figure = std::move(figure)] {
      MetricReading reading;
      for (const auto& [alias, project] : flag_projects) {
        if (project.definitions == nullptr) continue;
        if (std::optional<double> value = figure(*project.definitions->Current())) {
          reading.push_back({{alias}, *value});
        }
      }
      return reading;
    };
  };
  metrics->AddObserved(
      "posthog_gateway_flag_definitions_flags", "Flags in the project's current definitions.",
      "gauge", {"project"},
      each_project([](const flags::DefinitionsSnapshot& snapshot) -> std::optional<double> {
        if (snapshot.definitions == nullptr) return 0;
        return static_cast<double>(snapshot.definitions->flags().size());
      }));
  metrics->AddObserved(
      "posthog_gateway_flag_definitions_age_seconds",
      "Seconds since PostHog last confirmed the project's flag definitions.", "gauge", {"project"},
      each_project([](const flags::DefinitionsSnapshot& snapshot) -> std::optional<double> {
        if (snapshot.fetch_time == absl::InfinitePast()) return std::nullopt;
        return absl::ToDoubleSeconds(absl::Now() - snapshot.fetch_time);
      }));
  metrics->AddObserved(
      "posthog_gateway_flag_definitions_stale",
      "1 while the last refresh of the project's flag definitions failed (the last ones are "
      "served).",
      "gauge", {"project"},
      each_project([](const flags::DefinitionsSnapshot& snapshot) -> std::optional<double> {
        return snapshot.stale ? 1 : 0;
      }));
  metrics->AddObserved(
      "posthog_gateway_flag_definitions_quota_limited",
      "1 while PostHog withholds the project's flag definitions for its quota (402).", "gauge",
      {"project"},
      each_project([](const flags::DefinitionsSnapshot& snapshot) -> std::optional<double> {
        return snapshot.quota_limited ? 1 : 0;
      }));
  metrics->AddObserved("posthog_gateway_flag_watch_streams",
                       "WatchFlagDefinitions streams open on the project.", "gauge", {"project"},
                       [flag_service] {
                         MetricReading reading;
                         for (const auto& [alias, streams] : flag_service->WatchStreams()) {
                           reading.push_back({{alias}, static_cast<double>(streams)});
                         }
                         return reading;
                       });
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> Interceptors(
    MetricsRegistry* metrics, const ServerConfig& server, const Authorizer* authorizer,
    AuditLog* audit) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> all;
  all.push_back(
      std::make_unique<ObservabilityInterceptorFactory>(metrics, authorizer, server.access_log));
  all.push_back(std::make_unique<AuditInterceptorFactory>(authorizer, audit));
  return all;
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
  if (cert.empty() && key.empty() && client_ca.empty() && health_port < 0) return absl::OkStatus();
  ServerTlsConfig tls = server.tls.value_or(ServerTlsConfig{});
  if (!cert.empty()) tls.cert_file = cert;
  if (!key.empty()) tls.key_file = key;
  if (!client_ca.empty()) tls.client_ca_file = client_ca;
  if (health_port >= 0) tls.plaintext_health_port = health_port;
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

// MakeResumeTokenCodec reads the configured secret, or makes a random one
// (tokens then resume only on this process).
absl::StatusOr<ResumeTokenCodec> MakeResumeTokenCodec(const PagingConfig& paging) {
  const KeySource& source = paging.resume_token_secret;
  if (!source.configured()) {
    LogInfo(
        "resume tokens use a random per-process secret; replicas need "
        "paging.resume_token_secret to resume each other's lists",
        {});
    return ResumeTokenCodec::WithRandomSecret(paging.resume_token_ttl);
  }
  std::string secret;
  if (!source.file.empty()) {
    std::ifstream file(source.file);
    std::getline(file, secret, '\0');
  } else if (const char* value = std::getenv(source.env.c_str()); value != nullptr) {
    secret = value;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.size() < 16) {
    return absl::FailedPreconditionError(absl::StrCat("paging.resume_token_secret from ",
                                                      source.Describe(),
                                                      " is missing or shorter than 16 bytes"));
  }
  return ResumeTokenCodec(std::move(secret), paging.resume_token_ttl);
}

// DrainSpool delivers the spool in `dir` (a directory another gateway left)
// and returns the exit status: 0 once it is empty, 1 if events are left at
// the timeout or the spool cannot be opened.
int DrainSpool(GatewayConfig config, const std::string& dir) {
  config.capture.spool_dir = dir;
  MetricsRegistry metrics;
  KeyStore keys(config);
  CurlHttpClientOptions http_options;
  http_options.default_timeout = config.upstream.default_timeout;
  http_options.connect_timeout = config.upstream.connect_timeout;
  http_options.ca_file = config.upstream.ca_file;
  const BuildInfo build_info = CurrentBuildInfo();
  http_options.user_agent = absl::StrCat("posthog-grpc-gateway/", build_info.version);
  CurlHttpClient curl(http_options);
  ObservedHttpClient http(&curl, &metrics);
  ProjectRegistry projects(config, &keys, &http);
  absl::StatusOr<std::unique_ptr<CapturePipeline>> capture =
      CapturePipeline::Create(config, &projects, &keys, build_info.version);
  if (!capture.ok()) {
    LogError("cannot open the spool to drain",
             {{"dir", dir}, {"error", std::string(capture.status().message())}});
    return 1;
  }
  const int64_t found = (*capture)->undelivered();
  LogInfo("draining a spool", {{"dir", dir}, {"events", absl::StrCat(found)}});
  const int64_t left =
      (*capture)->WaitUntilDelivered(absl::Now() + absl::GetFlag(FLAGS_drain_spool_timeout));
  if (left > 0) {
    LogError(
        "spool not drained: events are left on disk",
        {{"dir", dir}, {"delivered", absl::StrCat(found - left)}, {"left", absl::StrCat(left)}});
    return 1;
  }
  LogInfo("spool drained", {{"dir", dir}, {"delivered", absl::StrCat(found)}});
  return 0;
}

// ReadSecret reads a secret from its file or environment variable, without
// the trailing newline a file usually has.
std::string ReadSecret(const KeySource& source) {
  std::string secret;
  if (!source.file.empty()) {
    std::ifstream file(source.file);
    std::getline(file, secret, '\0');
  } else if (const char* value = std::getenv(source.env.c_str()); value != nullptr) {
    secret = value;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

// MakeFleet connects the fleet coordination when `redis` is configured
// (null otherwise). It never waits for Redis: an unreachable Redis at start
// only means acting alone until it answers.
absl::StatusOr<std::unique_ptr<FleetCoordinator>> MakeFleet(const GatewayConfig& config) {
  if (!config.redis.has_value()) return nullptr;
  const RedisConfig& redis = *config.redis;
  FleetOptions options;
  const size_t colon = redis.address.rfind(':');
  options.redis.host = redis.address.substr(0, colon);
  options.redis.port = std::stoi(redis.address.substr(colon + 1));
  options.redis.command_timeout = redis.command_timeout;
  if (redis.password.configured()) {
    options.redis.password = ReadSecret(redis.password);
    if (options.redis.password.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("redis.password from ", redis.password.Describe(), " is missing or empty"));
    }
  }
  options.key_prefix = redis.key_prefix;
  options.lease = redis.lease;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  options.replica_id =
      absl::StrCat(host, ":", getpid(), ":", absl::Hex(absl::ToUnixNanos(absl::Now())));
  LogInfo("fleet: coordinating through Redis",
          {{"address", redis.address}, {"replica", options.replica_id}});
  return std::make_unique<FleetCoordinator>(std::move(options));
}

// ObserveFleet exposes the fleet coordination's state on the admin port.
void ObserveFleet(const FleetCoordinator& fleet,
                  const std::map<std::string, FlagProject>& flag_projects,
                  MetricsRegistry* metrics) {
  metrics->AddObserved(
      "posthog_gateway_fleet_shared",
      "1 while Redis answers (one rate budget and one flag poll for the fleet); 0 while this "
      "replica paces with its share and polls alone.",
      "gauge", {}, [&fleet] {
        return MetricReading{{{}, fleet.Shared() ? 1.0 : 0.0}};
      });
  metrics->AddObserved("posthog_gateway_fleet_replicas",
                       "Replicas sharing the budget, as last seen in Redis.", "gauge", {},
                       [&fleet] {
                         return MetricReading{{{}, static_cast<double>(fleet.Replicas())}};
                       });
  metrics->AddObserved("posthog_gateway_fleet_redis_errors_total",
                       "Redis commands that failed (unreachable, timed out or refused).", "counter",
                       {}, [&fleet] {
                         return MetricReading{{{}, static_cast<double>(fleet.errors())}};
                       });
  metrics->AddObserved(
      "posthog_gateway_flag_definitions_polling",
      "1 when this replica polls the project's flag definitions from PostHog (it holds the "
      "fleet's lease, or is alone).",
      "gauge", {"project"}, [&flag_projects] {
        MetricReading reading;
        for (const auto& [alias, project] : flag_projects) {
          if (project.definitions == nullptr) continue;
          reading.push_back({{alias}, project.definitions->Polling() ? 1.0 : 0.0});
        }
        return reading;
      });
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
    return DrainSpool(*std::move(config), dir);
  }
  const double spool_send_share = absl::GetFlag(FLAGS_spool_send_share);
  if (!(spool_send_share >= 0 && spool_send_share <= 1)) {
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
  // Who may call what: identity sources, grants, quotas and the audit log.
  std::unique_ptr<BearerTokens> bearer_tokens;
  if (!config->authorization.bearer_tokens_file.empty()) {
    bearer_tokens = std::make_unique<BearerTokens>(config->authorization.bearer_tokens_file);
    if (std::string error = bearer_tokens->LoadError(); !error.empty()) {
      LogError("cannot load the bearer token file", {{"error", error}});
      return 2;
    }
  }
  absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
      Authorizer::Create(*config, bearer_tokens.get(), RealClock());
  if (!authorizer.ok()) {
    LogError("bad grants", {{"error", std::string(authorizer.status().message())}});
    return 2;
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> audit_log =
      AuditLog::Open(config->authorization.audit_log_file);
  if (!audit_log.ok()) {
    LogError("cannot open the audit log", {{"error", std::string(audit_log.status().message())}});
    return 2;
  }
  for (const StartupNotice& notice : AuthorizationNotices(*config, absl::GetFlag(FLAGS_host))) {
    Log(notice.warning ? LogSeverity::kWarning : LogSeverity::kInfo, notice.message);
  }

  const BuildInfo build_info = CurrentBuildInfo();
  MetricsRegistry metrics;
  KeyStore keys(*config);
  CurlHttpClientOptions http_options;
  http_options.default_timeout = config->upstream.default_timeout;
  http_options.connect_timeout = config->upstream.connect_timeout;
  http_options.ca_file = config->upstream.ca_file;
  http_options.user_agent = absl::StrCat("posthog-grpc-gateway/", build_info.version);
  CurlHttpClient curl(http_options);
  ObservedHttpClient http(&curl, &metrics);
  ProjectRegistry projects(*config, &keys, &http);

  // Feature flags: per project, the polled definitions (when a key can fetch
  // them). The `$feature_flag_called` sinks follow the capture pipeline.
  // With `redis` configured, the fleet shares the rate budgets and one
  // definitions poll per project (declared first: destroyed last).
  absl::StatusOr<std::unique_ptr<FleetCoordinator>> fleet = MakeFleet(*config);
  if (!fleet.ok()) {
    LogError("cannot set up the fleet's Redis", {{"error", std::string(fleet.status().message())}});
    return 2;
  }
  std::vector<std::unique_ptr<flags::DefinitionsStore>> flag_stores;
  std::map<std::string, FlagProject> flag_projects;
  for (const ProjectConfig& project : config->projects) {
    const PostHogClient* client = *projects.Resolve(project.alias);
    FlagProject& flag_project = flag_projects[project.alias];
    if (!project.project_api_key.configured()) continue;
    if (project.feature_flags_secure_key.configured() || project.personal_api_key.configured()) {
      flag_stores.push_back(std::make_unique<flags::DefinitionsStore>(client, config->flags));
      if (*fleet != nullptr) flag_stores.back()->UseFleet(fleet->get(), config->redis->lease);
      flag_project.definitions = flag_stores.back().get();
    }
  }
  for (auto& store : flag_stores) store->Start();
  auto flags_loaded = [&flag_stores] {
    for (const auto& store : flag_stores) {
      if (!store->Loaded()) return false;
    }
    return true;
  };

  UserServiceImpl user_service(&projects, absl::Seconds(5), RealClock(), authorizer->get());
  // Capture: replays the spool before serving, so that events acknowledged
  // before a restart are on their way first.
  absl::StatusOr<std::unique_ptr<CapturePipeline>> capture =
      CapturePipeline::Create(*config, &projects, &keys, build_info.version);
  if (!capture.ok()) {
    LogError("cannot open the capture spool", {{"dir", config->capture.spool_dir},
                                               {"error", std::string(capture.status().message())}});
    return 1;
  }
  // Streams open at once, in total and per caller (server.max_streams*).
  StreamLimits stream_limits(config->server.max_streams, config->server.max_streams_per_caller);
  CaptureServiceImpl capture_service(capture->get(), authorizer->get(), &stream_limits,
                                     config->capture.max_delivered_waits);
  // `$feature_flag_called` events go through the capture pipeline like any
  // other event (declared after it: destroyed first, flushing into it).
  std::vector<std::unique_ptr<CaptureFlagCalledSink>> flag_sinks;
  for (const ProjectConfig& project : config->projects) {
    if (!project.project_api_key.configured()) continue;
    CapturePipeline* pipeline = capture->get();
    CaptureFlagCalledSink::Options sink_options;
    sink_options.flush_interval = config->flags.flag_called_flush_interval;
    flag_sinks.push_back(std::make_unique<CaptureFlagCalledSink>(
        project.alias,
        [pipeline, alias = project.alias](const std::vector<const posthog::v1::Event*>& events) {
          return pipeline
              ->Capture(alias, events, "feature_flag_called", /*indexed=*/true,
                        posthog::v1::ACK_MODE_DURABLE, absl::Now() + absl::Seconds(10))
              .status();
        },
        sink_options));
    flag_projects[project.alias].flag_called = flag_sinks.back().get();
  }
  absl::StatusOr<ResumeTokenCodec> resume_tokens = MakeResumeTokenCodec(config->paging);
  if (!resume_tokens.ok()) {
    LogError("cannot read the resume token secret",
             {{"error", std::string(resume_tokens.status().message())}});
    return 2;
  }
  // Every list stream's page fetches, on paging.fetch_threads threads.
  FetchPool fetch_pool(config->paging.fetch_threads);
  PersonServiceImpl person_service(&projects, config->paging, &*resume_tokens, RealClock(),
                                   fleet->get(), authorizer->get(), &fetch_pool, &stream_limits);
  GroupServiceImpl group_service(&projects, config->paging, &*resume_tokens, RealClock(),
                                 fleet->get(), authorizer->get(), &fetch_pool, &stream_limits);
  FlagServiceImpl flag_service(&projects, flag_projects, config->flags, config->paging,
                               &*resume_tokens, RealClock(), fleet->get(), authorizer->get(),
                               &fetch_pool, &stream_limits);
  // OpenFeature's flagd providers (RPC resolver) on the same port.
  FlagdServiceImpl flagd_service(&flag_service, &projects, flag_projects,
                                 config->flags.watch_heartbeat, authorizer->get(), &stream_limits);

  GatewayServer server(config->server,
                       {{posthog::v1::UserService::service_full_name(), &user_service},
                        {posthog::v1::CaptureService::service_full_name(), &capture_service},
                        {posthog::v1::PersonService::service_full_name(), &person_service},
                        {posthog::v1::GroupService::service_full_name(), &group_service},
                        {posthog::v1::FlagService::service_full_name(), &flag_service},
                        {FlagdServiceImpl::kServiceName, &flagd_service}},
                       Interceptors(&metrics, config->server, authorizer->get(), audit_log->get()));
  absl::StatusOr<int> port = server.Start(absl::GetFlag(FLAGS_host), config->server.port);
  if (!port.ok()) {
    LogError("cannot start", {{"error", std::string(port.status().message())}});
    return 1;
  }
  // Ready once what the pod itself needs is there: every key loaded and the
  // spool writable. PostHog's state never holds readiness back (a PostHog
  // outage must not shrink capture capacity): it shows on the per-service
  // entries, `posthog.v1.FlagService` NOT_SERVING until every project's
  // definitions are known (`posthog.v1.FlagService/<alias>` per project),
  // and in metrics. The first fetches started before the server: give them a
  // moment (bounded), so that a healthy start has its definitions when the
  // port file appears.
  auto ready_now = [&] { return keys.AllLoaded() && (*capture)->spool_writable(); };
  for (auto& store : flag_stores) store->WaitForChange(0, absl::Seconds(2));
  auto publish_flag_health = [&] {
    server.SetServiceCondition(posthog::v1::FlagService::service_full_name(), flags_loaded());
    for (const auto& [alias, project] : flag_projects) {
      server.SetServingStatus(
          absl::StrCat(posthog::v1::FlagService::service_full_name(), "/", alias),
          project.definitions == nullptr || project.definitions->Loaded());
    }
  };
  publish_flag_health();
  bool published_ready = ready_now();
  server.SetReady(published_ready);
  ObserveCapture(**capture, flag_sinks, &metrics);
  ObserveFlags(flag_projects, &flag_service, &metrics);
  if (*fleet != nullptr) ObserveFleet(**fleet, flag_projects, &metrics);
  metrics.AddObserved("posthog_gateway_capture_spool_max_bytes",
                      "The spool's size bound (capture.max_spool_bytes); beyond it capture answers "
                      "RESOURCE_EXHAUSTED.",
                      "gauge", {}, [max = config->capture.max_spool_bytes] {
                        return MetricReading{{{}, static_cast<double>(max)}};
                      });
  // When SIGTERM started the drain; the admin server keeps answering until
  // the drain is over, so a drain past its budget shows (and alerts).
  std::atomic<double> drain_started{0};  // Seconds since the epoch; 0 while serving.
  metrics.AddObserved(
      "posthog_gateway_drain_seconds",
      "Seconds since SIGTERM started the drain (drain delay, then calls in flight "
      "finishing); 0 while serving.",
      "gauge", {}, [&drain_started] {
        const double started = drain_started.load();
        return MetricReading{
            {{}, started == 0 ? 0.0 : absl::ToUnixMillis(absl::Now()) / 1e3 - started}};
      });
  AddBuildInfo(build_info, &metrics);
  AddProcessMetrics(&metrics);
  ObserveUpstream(projects, &metrics);
  // OFREP, off by default.
  OfrepServer::Options ofrep_options;
  ofrep_options.access_log = config->server.access_log;
  ofrep_options.threads = static_cast<int>(config->openfeature.ofrep_threads);
  ofrep_options.max_body_bytes = static_cast<size_t>(config->server.max_receive_message_bytes);
  OfrepServer ofrep(&flag_service, authorizer->get(), ofrep_options);
  const int ofrep_port = absl::GetFlag(FLAGS_ofrep_port) >= -1 ? absl::GetFlag(FLAGS_ofrep_port)
                                                               : config->openfeature.ofrep_port;
  if (ofrep_port >= 0) {
    absl::StatusOr<int> bound = ofrep.Start(absl::GetFlag(FLAGS_host), ofrep_port);
    if (!bound.ok()) {
      LogError("cannot start OFREP", {{"error", std::string(bound.status().message())}});
      return 1;
    }
    LogInfo("OFREP listening", {{"port", absl::StrCat(*bound)}});
  }
  AdminServer admin(&metrics);
  if (const int admin_port = absl::GetFlag(FLAGS_admin_port); admin_port >= 0) {
    absl::StatusOr<int> bound = admin.Start(absl::GetFlag(FLAGS_host), admin_port);
    if (!bound.ok()) {
      LogError("cannot start the admin server", {{"error", std::string(bound.status().message())}});
      return 1;
    }
    LogInfo("admin server listening", {{"port", absl::StrCat(*bound)}});
  }
  // After the gateway's server: gRPC adds channelz to every server built
  // once it is on, and the API port must not serve it.
  ChannelzServer channelz;
  if (const int channelz_port = absl::GetFlag(FLAGS_channelz_port); channelz_port >= 0) {
    absl::StatusOr<int> bound = channelz.Start(channelz_port);
    if (!bound.ok()) {
      LogError("cannot start channelz", {{"error", std::string(bound.status().message())}});
      return 1;
    }
    LogInfo("channelz listening", {{"address", absl::StrCat("127.0.0.1:", *bound)}});
  }
  // Capture's readiness per project: NOT_SERVING while PostHog refuses the
  // project's key (its events stay spooled).
  auto publish_capture_health = [&] {
    for (const ProjectConfig& project : config->projects) {
      server.SetServingStatus(
          absl::StrCat(posthog::v1::CaptureService::service_full_name(), "/", project.alias),
          !(*capture)->ProjectPaused(project.alias));
    }
  };
  publish_capture_health();
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file);
      !port_file.empty() && !WritePortFile(port_file, *port)) {
    LogError("cannot write the port file", {{"path", port_file}});
    return 1;
  }

  // Key rotation: re-read key files periodically; readiness follows whether
  // every configured key is loaded and the spool is writable (checked often,
  // as the flag definitions' health entries, so that both follow closely).
  absl::Notification stopping;
  std::thread key_reloader([&] {
    bool ready = published_ready;  // What health says now, not what it would.
    absl::Time next_reload = absl::Now() + config->key_reload_interval;
    while (!stopping.WaitForNotificationWithTimeout(
        std::min(config->key_reload_interval, absl::Milliseconds(100)))) {
      if (absl::Now() >= next_reload) {
        keys.Reload();
        if (bearer_tokens != nullptr) bearer_tokens->Reload();
        next_reload = absl::Now() + config->key_reload_interval;
      }
      publish_capture_health();
      publish_flag_health();
      // The fleet's state, as a health detail (never readiness).
      if (*fleet != nullptr) server.SetServingStatus("fleet", (*fleet)->Shared());
      // Only changes are published: health Watch streams see each update.
      if (ready_now() != ready) {
        ready = !ready;
        server.SetReady(ready);
      }
    }
  });

  // SIGTERM and SIGINT are blocked in every thread (see main) and taken here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  const absl::Time spool_send_deadline =
      absl::Now() + spool_send_share * absl::GetFlag(FLAGS_termination_grace);
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

  drain_started.store(absl::ToUnixMillis(absl::Now()) / 1e3);
  stopping.Notify();
  key_reloader.join();
  // Flag watch streams end with the drain delay, as Health/Watch: a caller
  // reopening one then reaches a replica that is still ready. Evaluation
  // keeps the last definitions until the end.
  server.Shutdown(absl::GetFlag(FLAGS_drain_delay), absl::GetFlag(FLAGS_shutdown_grace), [&] {
    flag_service.Shutdown();
    flagd_service.Shutdown();
    for (auto& store : flag_stores) store->Stop();
  });
  // The spool outlives the pod's calls: delivery goes on for the share of
  // the termination grace it was given; what is left stays on disk for the
  // next start on this volume (or a --drain_spool Job).
  if (const int64_t undelivered = (*capture)->undelivered(); undelivered > 0) {
    LogInfo("sending the spool before exiting", {{"events", absl::StrCat(undelivered)}});
    const int64_t left = (*capture)->WaitUntilDelivered(spool_send_deadline);
    if (left > 0) {
      LogWarning("events left in the spool for the next start",
                 {{"events", absl::StrCat(left)}, {"dir", config->capture.spool_dir}});
    } else {
      LogInfo("spool empty");
    }
  }
  channelz.Stop();
  ofrep.Stop();
  admin.Stop();
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
