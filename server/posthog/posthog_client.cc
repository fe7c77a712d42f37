#include "server/posthog/posthog_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/error_details.h"
#include "server/common/status_macros.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/user_json.h"

namespace posthog_gateway {

PostHogClient::PostHogClient(ProjectConfig project, const UpstreamConfig& upstream,
                             const KeyStore* keys, HttpClient* http)
    : project_(std::move(project)), upstream_(upstream), keys_(keys), http_(http) {}

absl::Time PostHogClient::Deadline(const CallContext& context) const {
  if (context.deadline == absl::InfiniteFuture()) return context.deadline;
  return context.deadline - upstream_.deadline_margin;
}

absl::StatusOr<nlohmann::json> PostHogClient::CallPrivateApi(
    absl::string_view method, absl::string_view path,
    const CallContext& context) const {
  ASSIGN_OR_RETURN(Secret key, keys_->Get(project_.alias, KeyKind::kPersonalApiKey));
  const std::string operation =
      absl::StrCat(method, " ", path, " for project \"", project_.alias, "\"");

  HttpRequest request;
  request.method = std::string(method);
  request.url = absl::StrCat(project_.app_host, path);
  request.headers = context.trace_headers;
  request.headers.emplace_back("Authorization", absl::StrCat("Bearer ", key.value()));
  request.headers.emplace_back("Accept", "application/json");
  request.deadline = Deadline(context);
  request.is_cancelled = context.is_cancelled;

  ASSIGN_OR_RETURN(HttpResponse response, http_->Send(request));
  RETURN_IF_ERROR(StatusFromHttpResponse(response, operation, absl::Now()));
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_discarded()) {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        "PostHog answered ", operation, " with a body that is not valid JSON (",
        response.body.size(), " bytes)"));
    AttachErrorInfo(status, "UPSTREAM_MALFORMED_RESPONSE",
                    {{"http_status", absl::StrCat(response.status_code)}});
    return status;
  }
  return body;
}

absl::StatusOr<posthog::v1::User> PostHogClient::GetCurrentUser(
    const CallContext& context) const {
  ASSIGN_OR_RETURN(nlohmann::json body,
                   CallPrivateApi("GET", "/api/users/@me/", context));
  absl::StatusOr<posthog::v1::User> user = UserFromJson(body);
  if (!user.ok()) {
    absl::Status status = absl::UnavailableError(user.status().message());
    AttachErrorInfo(status, "UPSTREAM_MALFORMED_RESPONSE");
    return status;
  }
  return user;
}

}  // namespace posthog_gateway
