#include "server/posthog/posthog_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/common/log.h"
#include "server/common/status_macros.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/personal_key_routes.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway {
namespace {

// The reasons of RefusedRequests, in the order of PostHogClient::refused_.
constexpr const char* kRefusalReasons[] = {"target_not_canonical", "personal_key_off_app_host",
                                           "personal_key_route_not_allowed"};
constexpr size_t kNotCanonical = 0;
constexpr size_t kOffAppHost = 1;
constexpr size_t kRouteNotAllowed = 2;

// A refused target for a log line: bounded, and only when canonical (then
// it holds no control characters).
std::string LoggablePath(const PostHogRequest& request, bool canonical) {
  if (!canonical) return absl::StrCat("(", request.path.size(), " bytes, not canonical)");
  const absl::string_view path = absl::string_view(request.path).substr(0, request.path.find('?'));
  return std::string(path.substr(0, 200));
}

}  // namespace

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
  const absl::string_view path = absl::string_view(request.path).substr(0, request.path.find('?'));
  return absl::StrCat(request.method, " ", path, " for project \"", project_.alias, "\"");
}

std::vector<std::pair<std::string, int64_t>> PostHogClient::RefusedRequests() const {
  std::vector<std::pair<std::string, int64_t>> counts;
  for (size_t i = 0; i < refused_.size(); ++i) {
    counts.emplace_back(kRefusalReasons[i], refused_[i].load());
  }
  return counts;
}

absl::Status PostHogClient::Refuse(const PostHogRequest& request, size_t reason,
                                   absl::string_view why) const {
  refused_[reason].fetch_add(1);
  LogError("refused to send a request to PostHog",
           {{"project", project_.alias},
            {"method", request.method.substr(0, 16)},
            {"path", LoggablePath(request, reason != kNotCanonical)},
            {"reason", kRefusalReasons[reason]}});
  absl::Status status =
      absl::InternalError(absl::StrCat("the gateway refused to send a request to PostHog (", why,
                                       ") for project \"", project_.alias, "\""));
  AttachErrorInfo(status, reasons::kUpstreamRequestRefused, {{"reason", kRefusalReasons[reason]}});
  return status;
}

absl::StatusOr<HttpResponse> PostHogClient::Send(const PostHogRequest& request,
                                                 const CallContext& context) const {
  absl::StatusOr<UpstreamUrl> target = ParseUpstreamTarget(request.path);
  if (!target.ok()) {
    return Refuse(request, kNotCanonical, "its target is not one UpstreamUrl builds");
  }
  if (request.bearer == KeyKind::kPersonalApiKey) {
    if (request.host != PostHogHost::kApp) {
      return Refuse(request, kOffAppHost, "the personal API key goes only to the app host");
    }
    if (!MatchPersonalKeyRoute(request.method, *target, project_.project_id).has_value()) {
      return Refuse(request, kRouteNotAllowed,
                    "the route is not on the personal API key's allow-list");
    }
  }
  HttpRequest http;
  http.method = request.method;
  http.url =
      absl::StrCat(request.host == PostHogHost::kApp ? project_.app_host : project_.ingestion_host,
                   request.path);
  http.headers = context.trace_headers;
  http.headers.insert(http.headers.end(), request.headers.begin(), request.headers.end());
  if (request.bearer.has_value()) {
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
    absl::Status status = absl::UnavailableError(
        absl::StrCat("PostHog answered ", Describe(request),
                     " with a body that is not valid JSON (", response.body.size(), " bytes)"));
    AttachErrorInfo(status, reasons::kUpstreamMalformedResponse,
                    {{"http_status", absl::StrCat(response.status_code)}});
    return status;
  }
  return body;
}

}  // namespace posthog_gateway
