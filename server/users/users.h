#ifndef SERVER_USERS_USERS_H_
#define SERVER_USERS_USERS_H_

// Typed PostHog user operations on a PostHogClient (docs/posthog-api.md §4):
// the current user of the project's personal API key, through
// `/api/users/@me/`, converted by UserFromJson (server/users/user_json.h).
//
// Thread-safe; borrows the PostHogClient.

#include "absl/status/statusor.h"
#include "posthog/v1/user.pb.h"
#include "server/posthog/call_context.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway {

// GetCurrentUser calls `GET /api/users/@me/` with the personal API key.
// PostHog's errors map as CallJson maps them; a body that is not a user is
// UNAVAILABLE with ErrorInfo UPSTREAM_MALFORMED_RESPONSE.
absl::StatusOr<posthog::v1::User> GetCurrentUser(const PostHogClient& client,
                                                 const CallContext& context);

}  // namespace posthog_gateway

#endif  // SERVER_USERS_USERS_H_
