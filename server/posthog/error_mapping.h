#ifndef SERVER_POSTHOG_ERROR_MAPPING_H_
#define SERVER_POSTHOG_ERROR_MAPPING_H_

// The one mapping from PostHog's HTTP answers to a status, used by every call
// the gateway makes to PostHog.
//
//   2xx            OK
//   400, 413       INVALID_ARGUMENT     ErrorInfo UPSTREAM_INVALID_REQUEST
//   401, 403       PERMISSION_DENIED    ErrorInfo UPSTREAM_CREDENTIALS_REJECTED:
//                                       PostHog refused the *gateway's* key,
//                                       which the caller cannot fix
//   402            RESOURCE_EXHAUSTED   ErrorInfo UPSTREAM_QUOTA_EXCEEDED
//   404            NOT_FOUND            ErrorInfo UPSTREAM_NOT_FOUND
//   405            UNIMPLEMENTED        ErrorInfo UPSTREAM_METHOD_NOT_ALLOWED
//   408            UNAVAILABLE          ErrorInfo UPSTREAM_TIMEOUT
//   409            ABORTED              ErrorInfo UPSTREAM_CONFLICT
//   429            RESOURCE_EXHAUSTED   ErrorInfo UPSTREAM_RATE_LIMITED +
//                                       RetryInfo (Retry-After, else PostHog's
//                                       "Expected available in N seconds",
//                                       else one second)
//   other 4xx      FAILED_PRECONDITION  ErrorInfo UPSTREAM_REJECTED
//   5xx            UNAVAILABLE          ErrorInfo UPSTREAM_UNAVAILABLE
//                                       (+ RetryInfo when Retry-After is set)
//   anything else  UNKNOWN              ErrorInfo UPSTREAM_UNEXPECTED_STATUS
//
// Transport failures never reach this function: the HttpClient reports them
// as UNAVAILABLE, DEADLINE_EXCEEDED or CANCELLED.
//
// PostHog's error body ({type, code, detail, attr}; capture's {status, code,
// error}; or plain text) is parsed best-effort into the message and the
// ErrorInfo metadata (`http_status`, `posthog_type`, `posthog_code`,
// `posthog_attr`). Body text is passed through RedactKeys and truncated.

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/http/http_client.h"

namespace posthog_gateway {

// StatusFromHttpResponse maps `response`. `operation` names what was asked
// ("GET /api/users/@me/ for project \"demo\""), for the message. `now` is used
// to turn an HTTP-date Retry-After into a delay.
absl::Status StatusFromHttpResponse(const HttpResponse& response, absl::string_view operation,
                                    absl::Time now);

// The longest wait the gateway takes from PostHog (a Retry-After, or DRF's
// "Expected available in N seconds"): longer ones are clamped to it, so that
// one answer cannot hold a project's persons, flags or capture back for
// hours. Every reader of those waits goes through the two parsers below.
inline constexpr absl::Duration kMaxRetryAfter = absl::Minutes(10);

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date,
// at most kMaxRetryAfter.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

// ParseExpectedAvailable reads the wait out of Django REST framework's
// throttle detail, "Request was throttled. Expected available in N seconds.",
// at most kMaxRetryAfter.
std::optional<absl::Duration> ParseExpectedAvailable(absl::string_view detail);

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_ERROR_MAPPING_H_
