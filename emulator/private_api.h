#ifndef EMULATOR_PRIVATE_API_H_
#define EMULATOR_PRIVATE_API_H_

// Authentication, authorization and throttling shared by the Django-style
// private API routes (/api/...). Thread-safe.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "emulator/auth.h"
#include "emulator/directory.h"
#include "emulator/handler.h"
#include "emulator/rate_limiter.h"
#include "emulator/state.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// AuthorizedRequest keeps the Directory alive for the request's duration.
struct AuthorizedRequest {
  std::shared_ptr<const Directory> directory;
  Principal principal;
  const Project* project = nullptr;  // null for non-project routes
};

// ParseJsonBody parses a request body as JSON; an empty body is `{}`.
// InvalidArgument (400 parse_error) when it is not JSON.
absl::StatusOr<nlohmann::json> ParseJsonBody(const httplib::Request& req);

// AuthorizePrivate authenticates the personal key (see auth.h), records the
// auth method in `ctx`, applies the `throttle` class for the key, and when
// `project_id` is non-empty resolves and authorizes that project for
// `scope`; otherwise checks `scope` alone.
absl::StatusOr<AuthorizedRequest> AuthorizePrivate(EmulatorState& state,
                                                   const httplib::Request& req, RequestContext& ctx,
                                                   const nlohmann::json* body,
                                                   const std::string& project_id,
                                                   const std::string& scope,
                                                   ThrottleClass throttle);

// SetError writes the PostHog error body for `status`.
void SetError(httplib::Response& res, const absl::Status& status);

}  // namespace posthog_emulator

#endif  // EMULATOR_PRIVATE_API_H_
