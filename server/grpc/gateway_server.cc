#include "server/grpc/gateway_server.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "server/common/log.h"
#include "server/grpc/malformed_request_interceptor.h"

namespace posthog_gateway {
namespace {

constexpr char kLiveness[] = "liveness";
// Threads kept polling for calls between calls (see Start).
constexpr int kMaxIdlePollers = 64;
constexpr char kReadiness[] = "readiness";

// Leaves out the plugins gRPC adds to every server (reflection, and channelz
// once enabled): the plaintext health port serves health and nothing else.
class WithoutPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

int Millis(absl::Duration duration) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(duration), std::numeric_limits<int>::max()));
}

}  // namespace

void ApplyServerOptions(const ServerConfig& config, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(config.max_receive_message_bytes);
  // Synchronous handlers (a list stream holds one for its whole life) take
  // their threads from this quota: past it gRPC answers a new call
  // RESOURCE_EXHAUSTED instead of starting a thread, and a thread the system
  // refuses is the same answer, never an abort.
  if (config.max_handler_threads > 0) {
    grpc::ResourceQuota quota("posthog-gateway-handlers");
    quota.SetMaxThreads(static_cast<int>(config.max_handler_threads));
    builder->SetResourceQuota(quota);
  }
  if (config.max_connection_age > absl::ZeroDuration()) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Millis(config.max_connection_age));
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                                Millis(config.max_connection_age_grace));
  }
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              Millis(config.min_client_ping_interval));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A sync-server thread whose handler blocked (a unary call waiting for
  // PostHog, a list stream) goes back to polling only while fewer than
  // MAX_POLLERS threads poll; with gRPC's default of 2 it exits and the next
  // call spawns a new one (when CaptureEvent was synchronous: about one
  // thread created per call under 16 callers, twice its CPU per call). Idle
  // pollers cost a parked thread each and no share of the callback methods'
  // calls: under 8-caller Health/Check load, 13 idle pollers made 2 context
  // switches in 3 s, the two callback threads 45,000 (issue 18).
  builder->SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxIdlePollers);
}

GatewayServer::GatewayServer(
    ServerConfig config, std::vector<NamedService> services,
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors)
    : config_(std::move(config)),
      services_(std::move(services)),
      interceptors_(std::move(interceptors)) {
  absl::flat_hash_set<std::string> raw_methods;
  for (const NamedService& named : services_) {
    for (absl::string_view method : named.raw_methods) {
      raw_methods.insert(absl::StrCat("/", named.full_name, "/", method));
    }
  }
  // First, so that every other interceptor sees the status it rewrites.
  interceptors_.insert(interceptors_.begin(), std::make_unique<MalformedRequestInterceptorFactory>(
                                                  std::move(raw_methods)));
}

GatewayServer::~GatewayServer() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  if (plaintext_health_server_ != nullptr) {
    plaintext_health_server_->Shutdown(std::chrono::system_clock::now());
  }
}

absl::StatusOr<int> GatewayServer::Start(absl::string_view host, int port) {
  if (absl::Status readable = CheckTlsFiles(); !readable.ok()) return readable;
  grpc::EnableDefaultHealthCheckService(false);  // Ours ends Watch on drain.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(host, ":", port), Credentials(), &bound_port);
  ApplyServerOptions(config_, &builder);
  builder.RegisterService(&health_);
  for (const NamedService& named : services_) builder.RegisterService(named.service);
  if (!interceptors_.empty()) {
    builder.experimental().SetInterceptorCreators(std::move(interceptors_));
  }

  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port));
  }
  if (config_.tls.has_value() && config_.tls->plaintext_health_port >= 0) {
    grpc::ServerBuilder health_builder;
    int health_port = 0;
    const std::string address = absl::StrCat(host, ":", config_.tls->plaintext_health_port);
    health_builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &health_port);
    health_builder.SetOption(std::make_unique<WithoutPlugins>());
    health_builder.RegisterService(&plaintext_health_);
    plaintext_health_server_ = health_builder.BuildAndStart();
    if (plaintext_health_server_ == nullptr || health_port == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
    }
    plaintext_health_port_ = health_port;
    // The bound port: with 0 asked for, this line is how it is found.
    LogInfo("plaintext health listening", {{"address", absl::StrCat(host, ":", health_port)},
                                           {"port", absl::StrCat(health_port)}});
  }
  SetServingStatus(kLiveness, true);
  SetReady(false);
  LogInfo("gateway listening", {{"address", absl::StrCat(host, ":", bound_port)},
                                {"tls", !config_.tls.has_value()              ? "off"
                                        : config_.tls->client_ca_file.empty() ? "on"
                                                                              : "mutual"}});
  return bound_port;
}

absl::Status GatewayServer::CheckTlsFiles() const {
  if (!config_.tls.has_value()) return absl::OkStatus();
  // gRPC's file watcher would start anyway and fail every handshake; a
  // missing or empty file is a start-up error instead, naming the field.
  const std::pair<const char*, const std::string*> files[] = {
      {"server.tls.cert_file", &config_.tls->cert_file},
      {"server.tls.key_file", &config_.tls->key_file},
      {"server.tls.client_ca_file", &config_.tls->client_ca_file}};
  for (const auto& [field, path] : files) {
    if (path->empty()) continue;
    std::ifstream file(*path);
    if (!file || file.peek() == std::ifstream::traits_type::eof()) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, ": cannot read ", *path, " (missing, unreadable or empty)"));
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> GatewayServer::Credentials() const {
  if (!config_.tls.has_value()) return grpc::InsecureServerCredentials();
  const ServerTlsConfig& tls = *config_.tls;
  // Re-reads the files every refresh interval: a renewed certificate reaches
  // new connections without a restart, and an unreadable one keeps the last.
  auto files = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file,
      static_cast<unsigned int>(absl::ToInt64Seconds(tls.refresh_interval)));
  grpc::experimental::TlsServerCredentialsOptions options(files);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

void GatewayServer::SetReady(bool ready) {
  absl::MutexLock lock(&mu_);
  ready_ = ready;
  // The services' entries first, readiness last: whoever watches readiness
  // change (a kubelet, a draining client) then finds every entry changed.
  PublishServices();
  SetServingStatus("", ready);
  SetServingStatus(kReadiness, ready);
}

void GatewayServer::SetServiceCondition(const std::string& full_name, bool condition) {
  absl::MutexLock lock(&mu_);
  conditions_[full_name] = condition;
  PublishServices();
}

void GatewayServer::PublishServices() {
  for (const NamedService& named : services_) {
    auto condition = conditions_.find(named.full_name);
    SetServingStatus(named.full_name,
                     ready_ && (condition == conditions_.end() || condition->second));
  }
}

void GatewayServer::SetServingStatus(const std::string& name, bool serving) {
  health_.SetServing(name, serving);
  plaintext_health_.SetServing(name, serving);
}

void GatewayServer::Shutdown(absl::Duration drain_delay, absl::Duration grace,
                             const std::function<void()>& drained) {
  LogInfo("draining", {{"drain_delay", absl::FormatDuration(drain_delay)},
                       {"grace", absl::FormatDuration(grace)}});
  SetReady(false);
  absl::SleepFor(drain_delay);
  // Watch streams end now rather than at the grace deadline.
  health_.Shutdown();
  if (drained) drained();
  plaintext_health_.Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  if (plaintext_health_server_ != nullptr) {
    plaintext_health_server_->Shutdown(std::chrono::system_clock::now());
    plaintext_health_server_->Wait();
  }
  LogInfo("gateway stopped");
}

}  // namespace posthog_gateway
