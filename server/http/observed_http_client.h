#ifndef SERVER_HTTP_OBSERVED_HTTP_CLIENT_H_
#define SERVER_HTTP_OBSERVED_HTTP_CLIENT_H_

// ObservedHttpClient is a decorator recording every call to PostHog in
// `posthog_upstream_request_duration_seconds{method, route, status}`, where
// route is the path with ids replaced (`/api/projects/:id/persons/:id/`) and
// status the HTTP status or, when no answer came, the transport error code.
//
// Thread-safe; borrows the child and the registry.

#include <string>

#include "absl/strings/string_view.h"
#include "server/http/http_client.h"
#include "server/observability/metrics.h"

namespace posthog_gateway {

class ObservedHttpClient final : public HttpClient {
 public:
  ObservedHttpClient(HttpClient* child, MetricsRegistry* registry);

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;

 private:
  HttpClient* child_;
  Histogram* duration_;
};

// RouteTemplate is the path of `url` without its query, numeric and UUID
// segments replaced by `:id`, so that metric labels stay few.
std::string RouteTemplate(absl::string_view url);

}  // namespace posthog_gateway

#endif  // SERVER_HTTP_OBSERVED_HTTP_CLIENT_H_
