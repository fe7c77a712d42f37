#include "server/http/observed_http_client.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace posthog_gateway {
namespace {

bool IsId(absl::string_view segment) {
  if (segment.empty()) return false;
  bool all_digits = true;
  bool hex_and_dashes = segment.size() == 36;
  for (char c : segment) {
    all_digits &= absl::ascii_isdigit(c);
    hex_and_dashes &= absl::ascii_isxdigit(c) || c == '-';
  }
  return all_digits || hex_and_dashes;
}

}  // namespace

std::string RouteTemplate(absl::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme != absl::string_view::npos) {
    const size_t path = url.find('/', scheme + 3);
    url = path == absl::string_view::npos ? "/" : url.substr(path);
  }
  url = url.substr(0, url.find_first_of("?#"));
  std::vector<std::string> segments = absl::StrSplit(url, '/');
  for (std::string& segment : segments) {
    if (IsId(segment)) segment = ":id";
  }
  return absl::StrJoin(segments, "/");
}

ObservedHttpClient::ObservedHttpClient(HttpClient* child, MetricsRegistry* registry)
    : child_(child),
      duration_(registry->AddHistogram(
          "posthog_upstream_request_duration_seconds",
          "Duration of calls to PostHog by route and outcome (HTTP status, or the "
          "transport error when no answer came).",
          {"method", "route", "status"}, MetricsRegistry::LatencyBuckets())) {}

absl::StatusOr<HttpResponse> ObservedHttpClient::Send(const HttpRequest& request) {
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> response = child_->Send(request);
  const std::string status = response.ok() ? absl::StrCat(response->status_code)
                                           : absl::StatusCodeToString(response.status().code());
  duration_->Observe({request.method, RouteTemplate(request.url), status},
                     absl::ToDoubleSeconds(absl::Now() - start));
  return response;
}

}  // namespace posthog_gateway
