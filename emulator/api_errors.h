#ifndef EMULATOR_API_ERRORS_H_
#define EMULATOR_API_ERRORS_H_

// PostHog's error bodies, built from absl::Status.
//
// Handlers return an absl::Status whose canonical code picks the HTTP status
// and whose payloads carry PostHog's `code` and `attr`; ToHttpError() is the
// one place that turns a Status into the Django (exceptions_hog) error body
// `{"type", "code", "detail", "attr"}`. None of these messages ever contains
// a key.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// HttpError is an HTTP status with its JSON body.
struct HttpError {
  int status = 500;
  nlohmann::json body;
};

// ErrorBody returns `{"type": type, "code": code, "detail": detail,
// "attr": attr or null}`.
nlohmann::json ErrorBody(absl::string_view type, absl::string_view code, absl::string_view detail,
                         absl::string_view attr = "");

// Status builders. Each returns a non-OK Status that ToHttpError() maps back
// to exactly the PostHog status code and body named in its comment.

// 401 authentication_error/not_authenticated.
absl::Status NotAuthenticatedError();
// 401 authentication_error/authentication_failed with `detail`.
absl::Status AuthenticationFailedError(absl::string_view detail);
// 403 authentication_error/permission_denied with `detail`.
absl::Status PermissionDeniedError(absl::string_view detail);
// 404 invalid_request/not_found "Not found.".
absl::Status NotFoundError();
// 400 validation_error with `code`, `detail` and `attr`.
absl::Status ValidationError(absl::string_view code, absl::string_view detail,
                             absl::string_view attr = "");
// 405 invalid_request/method_not_allowed with `detail`.
absl::Status MethodNotAllowedError(absl::string_view detail);
// 409 invalid_request/conflict with `detail`.
absl::Status ConflictError(absl::string_view detail);
// 429 throttled_error/throttled, "Expected available in N seconds.".
absl::Status ThrottledError(int wait_seconds);

// ToHttpError maps a non-OK Status built above (or any other Status: 500
// server_error) to its HTTP status and PostHog body.
HttpError ToHttpError(const absl::Status& status);

}  // namespace posthog_emulator

#endif  // EMULATOR_API_ERRORS_H_
