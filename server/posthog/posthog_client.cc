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

absl::StatusOr<Secret> PostHogClient::Key(KeyKind kind) const {
  return keys_->Get(project_.alias, kind);
}

std::string PostHogClient::Describe(const PostHogRequest& request) const {
  const absl::string_view path = absl::string_view(request.path).substr(
      0, request.path.find('?'));
  return absl::StrCat(request.method, " ", path, " for project \"", project_.alias,
                      "\"");
}

absl::StatusOr<HttpResponse> PostHogClient::Send(const PostHogRequest& request,
                                                 const CallContext& context) const {
  HttpRequest http;
  http.method = request.method;
  http.url = absl::StrCat(
      request.host == PostHogHost::kApp ? project_.app_host : project_.ingestion_host,
      request.path);
  http.headers = context.trace_headers;
  http.headers.insert(http.headers.end(), request.headers.begin(), request.headers.end());
  if (request.bearer.has_value()) {
    if (*request.bearer == KeyKind::kPersonalApiKey && request.host != PostHogHost::kApp) {
      return absl::InternalError(absl::StrCat(
          "refused to send the personal API key anywhere but the app host: ",
          Describe(request)));
    }
    ASSIGN_OR_RETURN(Secret key, Key(*request.bearer));
    http.headers.emplace_back("Authorization", absl::StrCat("Bearer ", key.value()));
  }
  http.body = request.body;
  http.deadline = Deadline(context);
  http.is_cancelled = context.is_cancelled;
  return http_->Send(http);
}

absl::StatusOr<nlohmann::json> PostHogClient::CallJson(const PostHogRequest& request,
                                                       const CallContext& context) const {
  ASSIGN_OR_RETURN(HttpResponse response, Send(request, context));
  RETURN_IF_ERROR(StatusFromHttpResponse(response, Describe(request), absl::Now()));
  if (response.body.empty()) return nlohmann::json();
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_discarded()) {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        "PostHog answered ", Describe(request), " with a body that is not valid JSON (",
        response.body.size(), " bytes)"));
    AttachErrorInfo(status, "UPSTREAM_MALFORMED_RESPONSE",
                    {{"http_status", absl::StrCat(response.status_code)}});
    return status;
  }
  return body;
}

absl::StatusOr<posthog::v1::User> PostHogClient::GetCurrentUser(
    const CallContext& context) const {
  PostHogRequest request;
  request.path = "/api/users/@me/";
  request.headers = {{"Accept", "application/json"}};
  request.bearer = KeyKind::kPersonalApiKey;
  ASSIGN_OR_RETURN(nlohmann::json body, CallJson(request, context));
  absl::StatusOr<posthog::v1::User> user = UserFromJson(body);
  if (!user.ok()) {
    absl::Status status = absl::UnavailableError(user.status().message());
    AttachErrorInfo(status, "UPSTREAM_MALFORMED_RESPONSE");
    return status;
  }
  return user;
}

}  // namespace posthog_gateway
