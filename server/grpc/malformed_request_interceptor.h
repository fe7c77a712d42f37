#ifndef SERVER_GRPC_MALFORMED_REQUEST_INTERCEPTOR_H_
#define SERVER_GRPC_MALFORMED_REQUEST_INTERCEPTOR_H_

// A request whose bytes are not a valid protobuf message is the caller's
// mistake: INVALID_ARGUMENT. gRPC decides otherwise before any handler runs
// (INTERNAL for a sync handler, UNIMPLEMENTED for a callback one), so this
// interceptor notices the request that failed to parse (gRPC hands
// interceptors no message for it) and rewrites that status on its way out.
//
// Only unary and server-streaming methods (one request message), and not
// the methods named raw: handlers that parse raw bytes themselves already
// answer INVALID_ARGUMENT. For every other call the factory makes no
// interceptor at all, so that the call pays nothing for it (an
// interceptor's allocation and its hooks on every batch of the call; a
// call no factory intercepts skips gRPC's interception entirely). Install
// it first, so that the other interceptors (metrics, access log) see the
// rewritten status. GatewayServer always does.
//
// Thread-safe.

#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "grpcpp/support/server_interceptor.h"

namespace posthog_gateway {

// The message of the INVALID_ARGUMENT this interceptor answers; a raw
// handler that takes a method over from a typed one answers the same.
inline constexpr char kMalformedRequestMessage[] =
    "the request is not a valid protobuf message of the method's request type";

class MalformedRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `raw_methods` are the paths (`/posthog.v1.FlagService/EvaluateFlags`)
  // of the methods whose handlers parse their request themselves.
  explicit MalformedRequestInterceptorFactory(absl::flat_hash_set<std::string> raw_methods = {})
      : raw_methods_(std::move(raw_methods)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const absl::flat_hash_set<std::string> raw_methods_;
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_MALFORMED_REQUEST_INTERCEPTOR_H_
