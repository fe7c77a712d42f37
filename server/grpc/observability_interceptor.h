#ifndef SERVER_GRPC_OBSERVABILITY_INTERCEPTOR_H_
#define SERVER_GRPC_OBSERVABILITY_INTERCEPTOR_H_

// Per-call observability of the gRPC server, as an interceptor so that no
// service has to remember it:
// - metrics with go-grpc-prometheus's names: grpc_server_started_total,
//   grpc_server_handled_total{grpc_code}, grpc_server_handling_seconds;
// - one JSON access-log line per call (method, code, duration, peer,
//   x-request-id, trace id, and the caller as the authorizer names it:
//   from what the deployment trusts, see server/authz/authorizer.h), except
//   health checks and reflection, which probes call every few seconds
//   (server.access_log can keep only the calls that fail, or none). The
//   line is written when the call is torn down, after its status went out:
//   the caller never waits for the log's write(2);
// - and, because it sees every status on its way out, the
//   grpc-retry-pushback-ms trailer for a status whose details hold a
//   RetryInfo (gRPC clients' retry policies read the trailer, not the
//   detail).
//
// Metric labels and the logged method come only from methods the binary
// knows (IsKnownMethod): a call to any other name, which a caller chooses
// freely, is counted under kUnknownMethodLabel, so series stay bounded.
//
// Thread-safe; the registry and the authorizer must outlive the server.

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/authz/authorizer.h"
#include "server/config/config.h"
#include "server/observability/metrics.h"

namespace posthog_gateway {

class ObservabilityInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `access_log` says which calls get a log line; `authorizer` names their
  // callers.
  ObservabilityInterceptorFactory(MetricsRegistry* registry, const Authorizer* authorizer,
                                  AccessLog access_log = AccessLog::kAll);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // What every call of one method shares: its names and its metric series,
  // resolved on its first call so that later calls neither look them up
  // nor build label strings.
  struct MethodInfo {
    std::string service;
    std::string method;
    std::string type;
    std::string full_name;  // "service/method", as logged.
    bool quiet = false;     // Health checks and reflection: no access log.
    Counter::Series* started = nullptr;
    Histogram::Series* handling_seconds = nullptr;
    // grpc_server_handled_total by status code, resolved on first use.
    std::atomic<Counter::Series*> handled[17] = {};
  };

 private:
  MethodInfo* Method(const grpc::experimental::ServerRpcInfo& info);

  absl::Mutex mu_;
  // Keyed by the path "/service/method"; entries are never removed.
  // Only methods IsKnownMethod knows; the rest share `unknown_`.
  absl::flat_hash_map<std::string, std::unique_ptr<MethodInfo>> methods_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<MethodInfo> unknown_ ABSL_GUARDED_BY(mu_);
  Counter* started_;
  Counter* handled_;
  Histogram* handling_seconds_;
  const Authorizer* authorizer_;
  AccessLog access_log_;
};

// The value of every metric label (grpc_type, grpc_service, grpc_method) and
// of the access log's method for a call to a method the binary does not know.
inline constexpr absl::string_view kUnknownMethodLabel = "unknown";

// IsKnownMethod is whether `service` (e.g. "posthog.v1.UserService") has
// `method` among the protobuf services linked into the binary.
bool IsKnownMethod(absl::string_view service, absl::string_view method);

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_OBSERVABILITY_INTERCEPTOR_H_
