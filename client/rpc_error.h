#ifndef CLIENT_RPC_ERROR_H_
#define CLIENT_RPC_ERROR_H_

// The client's one boundary between gRPC errors and absl::Status.
//
// A failed call's grpc::Status becomes an absl::Status with the same code and
// message. When the server sent rich error details (the
// `grpc-status-details-bin` trailer, a serialized google.rpc.Status whose
// `details` hold ErrorInfo, RetryInfo, BadRequest, ...), the whole
// google.rpc.Status rides along as one payload, so the details keep their
// order and can be read back or printed later.
//
// All functions are pure and thread-safe.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"

namespace posthog_client {

// The payload key under which FromGrpcStatus keeps the google.rpc.Status of
// the server's rich error details.
inline constexpr absl::string_view kRpcStatusPayloadUrl = "type.googleapis.com/google.rpc.Status";

// FromGrpcStatus converts `status` to an absl::Status with the same canonical
// code (UNKNOWN for a code outside the canonical range) and message. Binary
// error details, when present, are kept verbatim under kRpcStatusPayloadUrl,
// even when they do not parse, so that nothing the server sent is lost.
absl::Status FromGrpcStatus(const grpc::Status& status);

// RpcStatusDetails returns the google.rpc.Status that FromGrpcStatus kept on
// `status`, or nullopt when there is none or it does not parse.
std::optional<google::rpc::Status> RpcStatusDetails(const absl::Status& status);

// FormatRpcError renders a failed status for people, one fact per line and
// no trailing newline:
//
//   error: INVALID_ARGUMENT: project "nope" is not configured
//     ErrorInfo: reason=UNKNOWN_PROJECT domain=posthog-gateway
//       metadata: project=nope
//     RetryInfo: retry after 1.5s
//     BadRequest: project: names no configured project
//
// ErrorInfo metadata is printed sorted by key, one `key=value` per line.
// Other google.rpc details linked into the program (QuotaFailure,
// ResourceInfo, Help, ...) print as their text-format one-liner; a detail of
// an unknown type prints its type URL and size; undecodable details say so.
// An OK status renders as "ok".
std::string FormatRpcError(const absl::Status& status);

}  // namespace posthog_client

#endif  // CLIENT_RPC_ERROR_H_
