#include "server/gateway.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/group.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/grpc/observability_interceptor.h"

namespace posthog_gateway {
namespace {

// The two kinds of start-up failure (see ExitCode). The cause was logged.
absl::Status ConfigurationError(absl::string_view what) { return absl::InvalidArgumentError(what); }
absl::Status ResourceError(absl::string_view what) { return absl::UnavailableError(what); }

// ObserveCapture exposes the capture pipeline's state on the admin port. The
// pipeline and sinks must outlive every Expose (the admin server is declared
// after them in Gateway, so it stops first).
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
  std::string secret = ReadSecret(source);
  if (secret.size() < 16) {
    return absl::FailedPreconditionError(absl::StrCat("paging.resume_token_secret from ",
                                                      source.Describe(),
                                                      " is missing or shorter than 16 bytes"));
  }
  return ResumeTokenCodec(std::move(secret), paging.resume_token_ttl);
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

}  // namespace

int ExitCode(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int DrainSpool(GatewayConfig config, const std::string& dir, absl::Duration timeout) {
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
  const int64_t left = (*capture)->WaitUntilDelivered(absl::Now() + timeout);
  if (left > 0) {
    LogError(
        "spool not drained: events are left on disk",
        {{"dir", dir}, {"delivered", absl::StrCat(found - left)}, {"left", absl::StrCat(left)}});
    return 1;
  }
  LogInfo("spool drained", {{"dir", dir}, {"delivered", absl::StrCat(found)}});
  return 0;
}

Gateway::Gateway(GatewayConfig config, GatewayOptions options)
    : config_(std::move(config)), options_(std::move(options)), build_info_(CurrentBuildInfo()) {}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewayConfig config,
                                                         GatewayOptions options) {
  std::unique_ptr<Gateway> gateway(new Gateway(std::move(config), std::move(options)));
  if (absl::Status status = gateway->SetUpAuthorization(); !status.ok()) return status;
  if (absl::Status status = gateway->SetUpUpstream(); !status.ok()) return status;
  if (absl::Status status = gateway->SetUpServices(); !status.ok()) return status;
  gateway->SetUpMetrics();
  return gateway;
}

// Who may call what: identity sources, grants, quotas and the audit log.
absl::Status Gateway::SetUpAuthorization() {
  if (!config_.authorization.bearer_tokens_file.empty()) {
    bearer_tokens_ = std::make_unique<BearerTokens>(config_.authorization.bearer_tokens_file);
    if (std::string error = bearer_tokens_->LoadError(); !error.empty()) {
      LogError("cannot load the bearer token file", {{"error", error}});
      return ConfigurationError("cannot load the bearer token file");
    }
  }
  absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
      Authorizer::Create(config_, bearer_tokens_.get(), RealClock());
  if (!authorizer.ok()) {
    LogError("bad grants", {{"error", std::string(authorizer.status().message())}});
    return ConfigurationError("bad grants");
  }
  authorizer_ = *std::move(authorizer);
  absl::StatusOr<std::unique_ptr<AuditLog>> audit_log =
      AuditLog::Open(config_.authorization.audit_log_file);
  if (!audit_log.ok()) {
    LogError("cannot open the audit log", {{"error", std::string(audit_log.status().message())}});
    return ConfigurationError("cannot open the audit log");
  }
  audit_log_ = *std::move(audit_log);
  for (const StartupNotice& notice : AuthorizationNotices(config_, options_.host)) {
    Log(notice.warning ? LogSeverity::kWarning : LogSeverity::kInfo, notice.message);
  }
  return absl::OkStatus();
}

// Keys, the HTTP client, the PostHog clients, the fleet and the flag
// definitions polls.
absl::Status Gateway::SetUpUpstream() {
  keys_ = std::make_unique<KeyStore>(config_);
  HttpClient* upstream = options_.upstream_http;
  if (upstream == nullptr) {
    CurlHttpClientOptions http_options;
    http_options.default_timeout = config_.upstream.default_timeout;
    http_options.connect_timeout = config_.upstream.connect_timeout;
    http_options.ca_file = config_.upstream.ca_file;
    http_options.user_agent = absl::StrCat("posthog-grpc-gateway/", build_info_.version);
    curl_ = std::make_unique<CurlHttpClient>(http_options);
    upstream = curl_.get();
  }
  http_ = std::make_unique<ObservedHttpClient>(upstream, &metrics_);
  projects_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());

  // Feature flags: per project, the polled definitions (when a key can fetch
  // them). The `$feature_flag_called` sinks follow the capture pipeline.
  // With `redis` configured, the fleet shares the rate budgets and one
  // definitions poll per project (declared first: destroyed last).
  absl::StatusOr<std::unique_ptr<FleetCoordinator>> fleet = MakeFleet(config_);
  if (!fleet.ok()) {
    LogError("cannot set up the fleet's Redis", {{"error", std::string(fleet.status().message())}});
    return ConfigurationError("cannot set up the fleet's Redis");
  }
  fleet_ = *std::move(fleet);
  for (const ProjectConfig& project : config_.projects) {
    const PostHogClient* client = *projects_->Resolve(project.alias);
    FlagProject& flag_project = flag_projects_[project.alias];
    if (!project.project_api_key.configured()) continue;
    if (project.feature_flags_secure_key.configured() || project.personal_api_key.configured()) {
      flag_stores_.push_back(std::make_unique<flags::DefinitionsStore>(client, config_.flags));
      if (fleet_ != nullptr) flag_stores_.back()->UseFleet(fleet_.get(), config_.redis->lease);
      flag_project.definitions = flag_stores_.back().get();
    }
  }
  for (auto& store : flag_stores_) store->Start();
  return absl::OkStatus();
}

// The capture pipeline and the gRPC services, and the server that will
// serve them.
absl::Status Gateway::SetUpServices() {
  user_service_ = std::make_unique<UserServiceImpl>(projects_.get(), absl::Seconds(5), RealClock(),
                                                    authorizer_.get());
  // Capture: replays the spool before serving, so that events acknowledged
  // before a restart are on their way first.
  absl::StatusOr<std::unique_ptr<CapturePipeline>> capture =
      CapturePipeline::Create(config_, projects_.get(), keys_.get(), build_info_.version);
  if (!capture.ok()) {
    LogError("cannot open the capture spool", {{"dir", config_.capture.spool_dir},
                                               {"error", std::string(capture.status().message())}});
    return ResourceError("cannot open the capture spool");
  }
  capture_ = *std::move(capture);
  // Streams open at once, in total and per caller (server.max_streams*).
  stream_limits_ = std::make_unique<StreamLimits>(config_.server.max_streams,
                                                  config_.server.max_streams_per_caller);
  capture_service_ = std::make_unique<CaptureServiceImpl>(
      capture_.get(), authorizer_.get(), stream_limits_.get(), config_.capture.max_delivered_waits);
  // `$feature_flag_called` events go through the capture pipeline like any
  // other event (declared after it: destroyed first, flushing into it).
  for (const ProjectConfig& project : config_.projects) {
    if (!project.project_api_key.configured()) continue;
    CapturePipeline* pipeline = capture_.get();
    CaptureFlagCalledSink::Options sink_options;
    sink_options.flush_interval = config_.flags.flag_called_flush_interval;
    flag_sinks_.push_back(std::make_unique<CaptureFlagCalledSink>(
        project.alias,
        [pipeline, alias = project.alias](const std::vector<const posthog::v1::Event*>& events) {
          return pipeline
              ->Capture(alias, events, "feature_flag_called", /*indexed=*/true,
                        posthog::v1::ACK_MODE_DURABLE, absl::Now() + absl::Seconds(10))
              .status();
        },
        sink_options));
    flag_projects_[project.alias].flag_called = flag_sinks_.back().get();
  }
  absl::StatusOr<ResumeTokenCodec> resume_tokens = MakeResumeTokenCodec(config_.paging);
  if (!resume_tokens.ok()) {
    LogError("cannot read the resume token secret",
             {{"error", std::string(resume_tokens.status().message())}});
    return ConfigurationError("cannot read the resume token secret");
  }
  resume_tokens_.emplace(*std::move(resume_tokens));
  // Every list stream's page fetches, on paging.fetch_threads threads.
  fetch_pool_ = std::make_unique<FetchPool>(config_.paging.fetch_threads);
  person_service_ = std::make_unique<PersonServiceImpl>(
      projects_.get(), config_.paging, &*resume_tokens_, RealClock(), fleet_.get(),
      authorizer_.get(), fetch_pool_.get(), stream_limits_.get());
  group_service_ = std::make_unique<GroupServiceImpl>(
      projects_.get(), config_.paging, &*resume_tokens_, RealClock(), fleet_.get(),
      authorizer_.get(), fetch_pool_.get(), stream_limits_.get());
  flag_service_ = std::make_unique<FlagServiceImpl>(
      projects_.get(), flag_projects_, config_.flags, config_.paging, &*resume_tokens_, RealClock(),
      fleet_.get(), authorizer_.get(), fetch_pool_.get(), stream_limits_.get());
  // OpenFeature's flagd providers (RPC resolver) on the same port.
  flagd_service_ = std::make_unique<FlagdServiceImpl>(flag_service_.get(), projects_.get(),
                                                      flag_projects_, config_.flags.watch_heartbeat,
                                                      authorizer_.get(), stream_limits_.get());

  server_ = std::make_unique<GatewayServer>(
      config_.server,
      std::vector<NamedService>{
          {posthog::v1::UserService::service_full_name(), user_service_.get()},
          {posthog::v1::CaptureService::service_full_name(),
           capture_service_.get(),
           {std::begin(CaptureServiceImpl::kRawMethods),
            std::end(CaptureServiceImpl::kRawMethods)}},
          {posthog::v1::PersonService::service_full_name(), person_service_.get()},
          {posthog::v1::GroupService::service_full_name(), group_service_.get()},
          {posthog::v1::FlagService::service_full_name(),
           flag_service_.get(),
           {std::begin(FlagServiceImpl::kRawMethods), std::end(FlagServiceImpl::kRawMethods)}},
          {FlagdServiceImpl::kServiceName, flagd_service_.get()}},
      Interceptors(&metrics_, config_.server, authorizer_.get(), audit_log_.get()));
  return absl::OkStatus();
}

void Gateway::SetUpMetrics() {
  ObserveCapture(*capture_, flag_sinks_, &metrics_);
  ObserveFlags(flag_projects_, flag_service_.get(), &metrics_);
  if (fleet_ != nullptr) ObserveFleet(*fleet_, flag_projects_, &metrics_);
  metrics_.AddObserved("posthog_gateway_capture_spool_max_bytes",
                       "The spool's size bound (capture.max_spool_bytes); beyond it capture "
                       "answers RESOURCE_EXHAUSTED.",
                       "gauge", {}, [max = config_.capture.max_spool_bytes] {
                         return MetricReading{{{}, static_cast<double>(max)}};
                       });
  // When SIGTERM started the drain; the admin server keeps answering until
  // the drain is over, so a drain past its budget shows (and alerts).
  metrics_.AddObserved(
      "posthog_gateway_drain_seconds",
      "Seconds since SIGTERM started the drain (drain delay, then calls in flight "
      "finishing); 0 while serving.",
      "gauge", {}, [this] {
        const double started = drain_started_.load();
        return MetricReading{
            {{}, started == 0 ? 0.0 : absl::ToUnixMillis(absl::Now()) / 1e3 - started}};
      });
  AddBuildInfo(build_info_, &metrics_);
  AddProcessMetrics(&metrics_);
  ObserveUpstream(*projects_, &metrics_);
}

bool Gateway::ReadyNow() const { return keys_->AllLoaded() && capture_->spool_writable(); }

void Gateway::PublishFlagHealth() {
  // The projects' entries first, then the service's, from the same readings:
  // whoever sees the service's entry SERVING finds every project's entry
  // SERVING too (each is read once; Loaded never goes back to false).
  bool all_loaded = true;
  for (const auto& [alias, project] : flag_projects_) {
    const bool loaded = project.definitions == nullptr || project.definitions->Loaded();
    if (!loaded) all_loaded = false;
    server_->SetServingStatus(
        absl::StrCat(posthog::v1::FlagService::service_full_name(), "/", alias), loaded);
  }
  server_->SetServiceCondition(posthog::v1::FlagService::service_full_name(), all_loaded);
}

// Capture's readiness per project: NOT_SERVING while PostHog refuses the
// project's key (its events stay spooled).
void Gateway::PublishCaptureHealth() {
  for (const ProjectConfig& project : config_.projects) {
    server_->SetServingStatus(
        absl::StrCat(posthog::v1::CaptureService::service_full_name(), "/", project.alias),
        !capture_->ProjectPaused(project.alias));
  }
}

absl::StatusOr<int> Gateway::Start() {
  absl::StatusOr<int> port = server_->Start(options_.host, config_.server.port);
  if (!port.ok()) {
    LogError("cannot start", {{"error", std::string(port.status().message())}});
    return ResourceError("cannot start");
  }
  started_ = true;
  // Ready once what the pod itself needs is there (ReadyNow). PostHog's state
  // never holds readiness back (a PostHog outage must not shrink capture
  // capacity): it shows on the per-service entries and in metrics. The
  // first fetches started in Create: give them a moment (bounded), so that a
  // healthy start has its definitions when the port file appears.
  for (auto& store : flag_stores_) store->WaitForChange(0, options_.first_definitions_wait);
  // Every entry before readiness (SetReady publishes readiness last): a
  // caller that sees readiness SERVING finds the projects' entries there.
  PublishFlagHealth();
  PublishCaptureHealth();
  if (fleet_ != nullptr) server_->SetServingStatus("fleet", fleet_->Shared());
  const bool published_ready = ReadyNow();
  server_->SetReady(published_ready);
  // OFREP, off by default.
  OfrepServer::Options ofrep_options;
  ofrep_options.access_log = config_.server.access_log;
  ofrep_options.threads = static_cast<int>(config_.openfeature.ofrep_threads);
  ofrep_options.max_body_bytes = static_cast<size_t>(config_.server.max_receive_message_bytes);
  ofrep_ = std::make_unique<OfrepServer>(flag_service_.get(), authorizer_.get(), ofrep_options);
  if (options_.ofrep_port >= 0) {
    absl::StatusOr<int> bound = ofrep_->Start(options_.host, options_.ofrep_port);
    if (!bound.ok()) {
      LogError("cannot start OFREP", {{"error", std::string(bound.status().message())}});
      return ResourceError("cannot start OFREP");
    }
    LogInfo("OFREP listening", {{"port", absl::StrCat(*bound)}});
  }
  admin_ = std::make_unique<AdminServer>(&metrics_);
  if (options_.admin_port >= 0) {
    absl::StatusOr<int> bound = admin_->Start(options_.host, options_.admin_port);
    if (!bound.ok()) {
      LogError("cannot start the admin server", {{"error", std::string(bound.status().message())}});
      return ResourceError("cannot start the admin server");
    }
    LogInfo("admin server listening", {{"port", absl::StrCat(*bound)}});
  }
  channelz_ = std::make_unique<ChannelzServer>();
  if (options_.channelz_port >= 0) {
    absl::StatusOr<int> bound = channelz_->Start(options_.channelz_port);
    if (!bound.ok()) {
      LogError("cannot start channelz", {{"error", std::string(bound.status().message())}});
      return ResourceError("cannot start channelz");
    }
    LogInfo("channelz listening", {{"address", absl::StrCat("127.0.0.1:", *bound)}});
  }
  reloader_ = std::thread([this, published_ready] { ReloadLoop(published_ready); });
  return *port;
}

// Key rotation: re-read key files periodically; readiness follows whether
// every configured key is loaded and the spool is writable (checked often,
// as the flag definitions' health entries, so that both follow closely).
void Gateway::ReloadLoop(bool published_ready) {
  bool ready = published_ready;  // What health says now, not what it would.
  absl::Time next_reload = absl::Now() + config_.key_reload_interval;
  while (!stopping_.WaitForNotificationWithTimeout(
      std::min(config_.key_reload_interval, options_.health_interval))) {
    if (absl::Now() >= next_reload) {
      keys_->Reload();
      if (bearer_tokens_ != nullptr) bearer_tokens_->Reload();
      next_reload = absl::Now() + config_.key_reload_interval;
    }
    PublishCaptureHealth();
    PublishFlagHealth();
    // The fleet's state, as a health detail (never readiness).
    if (fleet_ != nullptr) server_->SetServingStatus("fleet", fleet_->Shared());
    // Only changes are published: health Watch streams see each update.
    if (ReadyNow() != ready) {
      ready = !ready;
      server_->SetReady(ready);
    }
  }
}

void Gateway::StopReloading() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (reloader_.joinable()) reloader_.join();
}

void Gateway::Shutdown() {
  const absl::Time spool_send_deadline =
      absl::Now() + options_.spool_send_share * options_.termination_grace;
  shut_down_ = true;
  drain_started_.store(absl::ToUnixMillis(absl::Now()) / 1e3);
  StopReloading();
  // Flag watch streams end with the drain delay, as Health/Watch: a caller
  // reopening one then reaches a replica that is still ready. Evaluation
  // keeps the last definitions until the end.
  server_->Shutdown(options_.drain_delay, options_.shutdown_grace, [this] {
    flag_service_->Shutdown();
    flagd_service_->Shutdown();
    for (auto& store : flag_stores_) store->Stop();
  });
  // The spool outlives the pod's calls: delivery goes on for the share of
  // the termination grace it was given; what is left stays on disk for the
  // next start on this volume (or a --drain_spool Job).
  if (const int64_t undelivered = capture_->undelivered(); undelivered > 0) {
    LogInfo("sending the spool before exiting", {{"events", absl::StrCat(undelivered)}});
    const int64_t left = capture_->WaitUntilDelivered(spool_send_deadline);
    if (left > 0) {
      LogWarning("events left in the spool for the next start",
                 {{"events", absl::StrCat(left)}, {"dir", config_.capture.spool_dir}});
    } else {
      LogInfo("spool empty");
    }
  }
  if (channelz_ != nullptr) channelz_->Stop();
  if (ofrep_ != nullptr) ofrep_->Stop();
  if (admin_ != nullptr) admin_->Stop();
}

Gateway::~Gateway() {
  StopReloading();
  if (started_ && !shut_down_) {
    server_->Shutdown(absl::ZeroDuration(), absl::ZeroDuration(), [this] {
      flag_service_->Shutdown();
      flagd_service_->Shutdown();
    });
  }
  for (auto& store : flag_stores_) store->Stop();
  if (channelz_ != nullptr) channelz_->Stop();
  if (ofrep_ != nullptr) ofrep_->Stop();
  if (admin_ != nullptr) admin_->Stop();
}

}  // namespace posthog_gateway
