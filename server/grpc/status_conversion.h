#ifndef SERVER_GRPC_STATUS_CONVERSION_H_
#define SERVER_GRPC_STATUS_CONVERSION_H_

// The gRPC boundary of error handling: an absl::Status becomes a grpc::Status
// whose binary details are a google.rpc.Status holding every detail attached
// with server/common/error_details.h (ErrorInfo, RetryInfo, BadRequest).

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace posthog_gateway {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_STATUS_CONVERSION_H_
