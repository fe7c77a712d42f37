#ifndef SERVER_GRPC_MALFORMED_REQUEST_INTERCEPTOR_H_
#define SERVER_GRPC_MALFORMED_REQUEST_INTERCEPTOR_H_

// A request whose bytes are not a valid protobuf message is the caller's
// mistake: INVALID_ARGUMENT. gRPC decides otherwise before any handler runs
// (INTERNAL for a sync handler, UNIMPLEMENTED for a callback one), so this
// interceptor notices the request that failed to parse (gRPC hands
// interceptors no message for it) and rewrites that status on its way out.
//
// Only unary and server-streaming methods (one request message); handlers
// that parse raw bytes themselves already answer INVALID_ARGUMENT. Install
// it first, so that the other interceptors (metrics, access log) see the
// rewritten status. GatewayServer always does.
//
// Thread-safe.

#include "grpcpp/support/server_interceptor.h"

namespace posthog_gateway {

class MalformedRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_MALFORMED_REQUEST_INTERCEPTOR_H_
