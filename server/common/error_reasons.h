#ifndef SERVER_COMMON_ERROR_REASONS_H_
#define SERVER_COMMON_ERROR_REASONS_H_

// Every `google.rpc.ErrorInfo.reason` the gateway sends (domain
// kErrorDomain, server/common/error_details.h), declared once. Callers branch
// on these strings, so each is part of the API: docs/errors.md lists them all
// with their gRPC code and whether to retry, tests/server/error_reasons_test
// checks that the list and this header agree and that no source file spells
// a reason outside this header, and a reason never changes meaning.
//
// OpenFeature's error codes (FLAG_NOT_FOUND, TYPE_MISMATCH, PARSE_ERROR, ...)
// are OpenFeature's vocabulary, not the gateway's: server/openfeature/
// resolution.h declares them.

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace posthog_gateway::reasons {

// The request.
// A `project` that names no configured project (metadata: project).
inline constexpr absl::string_view kUnknownProject = "UNKNOWN_PROJECT";
// A request message that is not the method's protobuf.
inline constexpr absl::string_view kMalformedRequest = "MALFORMED_REQUEST";
// A resume token that is not the gateway's, or not for this list.
inline constexpr absl::string_view kInvalidResumeToken = "INVALID_RESUME_TOKEN";

// Who calls (docs/security.md).
inline constexpr absl::string_view kCallerUnknown = "CALLER_UNKNOWN";
inline constexpr absl::string_view kGrantMissing = "GRANT_MISSING";
inline constexpr absl::string_view kCallerQuotaExceeded = "CALLER_QUOTA_EXCEEDED";

// The gateway's own capacity.
inline constexpr absl::string_view kCaptureSpoolFull = "CAPTURE_SPOOL_FULL";
// server.max_streams or server.max_streams_per_caller (metadata limit, max,
// open, caller, method).
inline constexpr absl::string_view kStreamLimitReached = "STREAM_LIMIT_REACHED";
// capture.max_delivered_waits: no thread may wait for PostHog's answer.
inline constexpr absl::string_view kDeliveredWaitsExhausted = "DELIVERED_WAITS_EXHAUSTED";

// PostHog's answers (server/posthog/error_mapping.h).
inline constexpr absl::string_view kUpstreamInvalidRequest = "UPSTREAM_INVALID_REQUEST";
inline constexpr absl::string_view kUpstreamCredentialsRejected = "UPSTREAM_CREDENTIALS_REJECTED";
inline constexpr absl::string_view kUpstreamQuotaExceeded = "UPSTREAM_QUOTA_EXCEEDED";
inline constexpr absl::string_view kUpstreamNotFound = "UPSTREAM_NOT_FOUND";
inline constexpr absl::string_view kUpstreamMethodNotAllowed = "UPSTREAM_METHOD_NOT_ALLOWED";
inline constexpr absl::string_view kUpstreamTimeout = "UPSTREAM_TIMEOUT";
inline constexpr absl::string_view kUpstreamConflict = "UPSTREAM_CONFLICT";
inline constexpr absl::string_view kUpstreamAlreadyExists = "UPSTREAM_ALREADY_EXISTS";
inline constexpr absl::string_view kUpstreamRateLimited = "UPSTREAM_RATE_LIMITED";
inline constexpr absl::string_view kUpstreamRejected = "UPSTREAM_REJECTED";
inline constexpr absl::string_view kUpstreamUnavailable = "UPSTREAM_UNAVAILABLE";
inline constexpr absl::string_view kUpstreamUnexpectedStatus = "UPSTREAM_UNEXPECTED_STATUS";
inline constexpr absl::string_view kUpstreamMalformedResponse = "UPSTREAM_MALFORMED_RESPONSE";
inline constexpr absl::string_view kUpstreamUntrustedNextUrl = "UPSTREAM_UNTRUSTED_NEXT_URL";
// The gateway refused to send a request (a path off the allow-list).
inline constexpr absl::string_view kUpstreamRequestRefused = "UPSTREAM_REQUEST_REFUSED";

// Every reason above, for the documentation test.
inline constexpr absl::string_view kAll[] = {
    kUnknownProject,
    kMalformedRequest,
    kInvalidResumeToken,
    kCallerUnknown,
    kGrantMissing,
    kCallerQuotaExceeded,
    kCaptureSpoolFull,
    kStreamLimitReached,
    kDeliveredWaitsExhausted,
    kUpstreamInvalidRequest,
    kUpstreamCredentialsRejected,
    kUpstreamQuotaExceeded,
    kUpstreamNotFound,
    kUpstreamMethodNotAllowed,
    kUpstreamTimeout,
    kUpstreamConflict,
    kUpstreamAlreadyExists,
    kUpstreamRateLimited,
    kUpstreamRejected,
    kUpstreamUnavailable,
    kUpstreamUnexpectedStatus,
    kUpstreamMalformedResponse,
    kUpstreamUntrustedNextUrl,
    kUpstreamRequestRefused,
};

}  // namespace posthog_gateway::reasons

#endif  // SERVER_COMMON_ERROR_REASONS_H_
