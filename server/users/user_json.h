#ifndef SERVER_USERS_USER_JSON_H_
#define SERVER_USERS_USER_JSON_H_

// Conversion of PostHog's `/api/users/@me/` body (UserSerializer) into the
// API's User message. Fields the message does not model go to `User.extra`,
// so that nothing PostHog sends is lost.

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/user.pb.h"

namespace posthog_gateway {

// UserFromJson converts the body; INVALID_ARGUMENT when it is not a JSON
// object or a modelled field has the wrong type.
absl::StatusOr<posthog::v1::User> UserFromJson(const nlohmann::json& json);

}  // namespace posthog_gateway

#endif  // SERVER_USERS_USER_JSON_H_
