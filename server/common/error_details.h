#ifndef SERVER_COMMON_ERROR_DETAILS_H_
#define SERVER_COMMON_ERROR_DETAILS_H_

// Rich error details (google.rpc.ErrorInfo, RetryInfo, BadRequest) carried on
// an absl::Status as payloads keyed by the detail's type URL, so that domain
// code can attach them without knowing about gRPC. The gRPC boundary
// (server/grpc/status_conversion.h) turns each payload into one
// `google.rpc.Status.details` entry.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace posthog_gateway {

// The ErrorInfo domain of every error the gateway raises.
inline constexpr absl::string_view kErrorDomain = "posthog-gateway";

// AttachErrorInfo adds a google.rpc.ErrorInfo with `reason` (UPPER_SNAKE_CASE,
// stable, machine-readable), the gateway's domain and `metadata`.
void AttachErrorInfo(absl::Status& status, absl::string_view reason,
                     const std::map<std::string, std::string>& metadata = {});

// AttachRetryDelay adds a google.rpc.RetryInfo telling the caller to wait
// `delay` before retrying.
void AttachRetryDelay(absl::Status& status, absl::Duration delay);

// A field violation of a google.rpc.BadRequest: the path of the bad field
// (e.g. `events[3].distinct_id`) and what is wrong with it.
struct FieldViolation {
  std::string field;
  std::string description;
};

// AttachBadRequest adds a google.rpc.BadRequest listing `violations`.
void AttachBadRequest(absl::Status& status, const std::vector<FieldViolation>& violations);

// InvalidArgumentWithViolations returns INVALID_ARGUMENT with `message` and a
// BadRequest listing `violations`.
absl::Status InvalidArgumentWithViolations(absl::string_view message,
                                           const std::vector<FieldViolation>& violations);

// ErrorInfoReason returns the reason of the status's ErrorInfo, if any.
std::optional<std::string> ErrorInfoReason(const absl::Status& status);

// RetryDelay returns the delay of the status's RetryInfo, if any.
std::optional<absl::Duration> RetryDelay(const absl::Status& status);

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_ERROR_DETAILS_H_
