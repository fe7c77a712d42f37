#include "server/users/users.h"

#include "nlohmann/json.hpp"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/common/status_macros.h"
#include "server/posthog/upstream_url.h"
#include "server/users/user_json.h"

namespace posthog_gateway {

absl::StatusOr<posthog::v1::User> GetCurrentUser(const PostHogClient& client,
                                                 const CallContext& context) {
  PostHogRequest request;
  ASSIGN_OR_RETURN(
      request.path,
      UpstreamUrl().Literal("api").Literal("users").Literal("@me").TrailingSlash().Build());
  request.headers = {{"Accept", "application/json"}};
  request.bearer = KeyKind::kPersonalApiKey;
  ASSIGN_OR_RETURN(nlohmann::json body, client.CallJson(request, context));
  absl::StatusOr<posthog::v1::User> user = UserFromJson(body);
  if (!user.ok()) {
    absl::Status status = absl::UnavailableError(user.status().message());
    AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
    return status;
  }
  return user;
}

}  // namespace posthog_gateway
