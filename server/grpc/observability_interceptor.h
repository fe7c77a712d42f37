#ifndef SERVER_GRPC_OBSERVABILITY_INTERCEPTOR_H_
#define SERVER_GRPC_OBSERVABILITY_INTERCEPTOR_H_

// Per-call observability of the gRPC server, as an interceptor so that no
// service has to remember it:
// - metrics with go-grpc-prometheus's names: grpc_server_started_total,
//   grpc_server_handled_total{grpc_code}, grpc_server_handling_seconds;
// - one JSON access-log line per call (method, code, duration, peer,
//   x-request-id, trace id, and the caller's identity when a mesh that
//   terminates mTLS vouches for it), except health checks and reflection,
//   which probes call every few seconds.
//
// Thread-safe; the registry must outlive the server.

#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/config/config.h"
#include "server/observability/metrics.h"

namespace posthog_gateway {

class ObservabilityInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  ObservabilityInterceptorFactory(MetricsRegistry* registry,
                                  CallerIdentitySource caller_identity);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Counter* started_;
  Counter* handled_;
  Histogram* handling_seconds_;
  CallerIdentitySource caller_identity_;
};

// The SPIFFE id in the last element of an x-forwarded-client-cert header
// (the one the nearest proxy added), e.g. `spiffe://cluster.local/ns/a/sa/b`;
// empty when there is none.
std::string CallerFromForwardedClientCert(absl::string_view header);

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_OBSERVABILITY_INTERCEPTOR_H_
