#ifndef SERVER_GRPC_GATEWAY_SERVER_H_
#define SERVER_GRPC_GATEWAY_SERVER_H_

// GatewayServer owns the gRPC server and its lifecycle the way a cluster
// expects it:
// - grpc.health.v1.Health answers for "", "liveness", "readiness" and each
//   registered service's full name (unknown names get NOT_FOUND). Liveness
//   never depends on PostHog; readiness is what SetReady says (what the pod
//   itself needs), and a service's own entry is readiness and the condition
//   SetServiceCondition gave it (e.g. flag definitions known).
// - Server reflection is on, so grpcurl and `buf curl` work without .proto
//   files.
// - Shutdown flips readiness to NOT_SERVING at once, waits for endpoints to
//   notice (the drain delay), ends the watch streams (Health/Watch and what
//   `drained` ends) so that their callers reconnect to a replica still in
//   the endpoints, then lets calls in flight finish within a grace period and
//   cancels what is left.
// - Channel arguments: explicit max receive size, max connection age (so
//   HTTP/2 connections rebalance across replicas) and keepalive enforcement.
// - Handler threads bounded by a grpc::ResourceQuota
//   (server.max_handler_threads): past it a call is RESOURCE_EXHAUSTED.
// - Optional TLS (`server.tls`, for deployments without a mesh), with the
//   certificate files re-read periodically, optional client certificates
//   (mTLS), and a plaintext port serving only health for the kubelet's gRPC
//   probes, which cannot speak TLS.
//
// Thread-safe after Start.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/config/config.h"
#include "server/grpc/health_service.h"

namespace posthog_gateway {

// A service to serve, with its full name (`posthog.v1.UserService`) for the
// health service.
struct NamedService {
  std::string full_name;
  grpc::Service* service;
  // The methods (`EvaluateFlags`) the service serves raw: their handlers
  // parse the request's bytes and answer INVALID_ARGUMENT themselves, so no
  // MalformedRequestInterceptor is made for their calls.
  std::vector<absl::string_view> raw_methods = {};
};

// ApplyServerOptions sets on `builder` what the gateway's transport is made
// of besides its services: max receive size, max connection age and its
// grace, keepalive enforcement, the handler-thread quota and the sync-server
// pollers. GatewayServer::Start uses it, and so does
// bench/flags/reply_bound_server, whose calls must cross the same transport:
// max connection age alone puts a filter on every call (about 9,500
// instructions of a Health/Check's 93,000 in the gateway, callgrind).
void ApplyServerOptions(const ServerConfig& config, grpc::ServerBuilder* builder);

class GatewayServer final {
 public:
  // Borrows the services, which must outlive the server. `interceptors`
  // run on every call (observability).
  GatewayServer(ServerConfig config, std::vector<NamedService> services,
                std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
                    interceptors = {});
  ~GatewayServer();

  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  // Start listens on host:port (port 0 picks a free one) and returns the
  // bound port; with TLS, also on the plaintext health port when it is >= 0
  // (0 picks a free one too). Readiness starts NOT_SERVING.
  absl::StatusOr<int> Start(absl::string_view host, int port);

  // The plaintext health port Start bound (0: none). Call after Start.
  int plaintext_health_port() const { return plaintext_health_port_; }

  // SetReady sets the "readiness" health status, and with it "" and each
  // service's own (SERVING only where the service's condition also holds),
  // the services' entries first, so that a Health/Watch of readiness sees
  // its change only once they have changed too. Call after Start.
  void SetReady(bool ready) ABSL_LOCKS_EXCLUDED(mu_);

  // SetServiceCondition sets what a registered service needs beyond
  // readiness (true unless set): its entry is SERVING when both hold. For
  // callers that care about PostHog's state (`posthog.v1.FlagService`
  // before definitions are known); readiness itself never waits for it.
  void SetServiceCondition(const std::string& full_name, bool condition) ABSL_LOCKS_EXCLUDED(mu_);

  // SetServingStatus sets the health status of one more name, e.g. a
  // component's per-project readiness (`posthog.v1.CaptureService/prod`).
  void SetServingStatus(const std::string& name, bool serving);

  // Shutdown drains and stops the server; see the class comment. `drained`,
  // if set, runs when the drain delay is over, before the server stops
  // taking calls. Returns once every call has ended.
  void Shutdown(absl::Duration drain_delay, absl::Duration grace,
                const std::function<void()>& drained = nullptr);

 private:
  const ServerConfig config_;
  const std::vector<NamedService> services_;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors_;
  // FAILED_PRECONDITION naming the field when a TLS file cannot be read.
  absl::Status CheckTlsFiles() const;
  // TLS or plaintext, as `config_.tls` says.
  std::shared_ptr<grpc::ServerCredentials> Credentials() const;

  // Publishes the services' entries from ready_ and conditions_.
  void PublishServices() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, bool> conditions_ ABSL_GUARDED_BY(mu_);
  HealthService health_;
  // The same statuses, on the plaintext health port (when TLS has one).
  HealthService plaintext_health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> plaintext_health_server_;
  int plaintext_health_port_ = 0;  // Written by Start only.
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_GATEWAY_SERVER_H_
