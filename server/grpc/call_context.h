#ifndef SERVER_GRPC_CALL_CONTEXT_H_
#define SERVER_GRPC_CALL_CONTEXT_H_

#include "grpcpp/grpcpp.h"
#include "server/posthog/call_context.h"

namespace posthog_gateway {

// CallContextFromServer captures what calls to PostHog inherit from the
// incoming gRPC call: its deadline, its cancellation, and its trace headers.
// The result refers to `context` and must not outlive the call.
CallContext CallContextFromServer(grpc::ServerContextBase* context);

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_CALL_CONTEXT_H_
