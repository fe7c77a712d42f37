#ifndef SERVER_HTTP_HTTP_CLIENT_H_
#define SERVER_HTTP_HTTP_CLIENT_H_

// The seam between the gateway and the network: one HTTP exchange at a time.
// Domain code never includes <curl/curl.h>; it builds an HttpRequest and gets
// an HttpResponse.
//
// A response with any HTTP status (404, 429, 503, ...) is a *successful*
// transfer; turning it into an error is the job of one pure function
// (server/posthog/error_mapping.h). Send fails only when no response arrived:
// UNAVAILABLE (connection refused, reset, TLS failure), DEADLINE_EXCEEDED
// (the request's deadline passed) or CANCELLED (the caller went away).

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace posthog_gateway {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  // Absolute URL, scheme included.
  std::string url;
  HttpHeaders headers;
  std::string body;
  // The transfer is abandoned at this time (DEADLINE_EXCEEDED).
  absl::Time deadline = absl::InfiniteFuture();
  // Polled during the transfer; returning true abandons it (CANCELLED).
  std::function<bool()> is_cancelled;
};

struct HttpResponse {
  int status_code = 0;
  // Header names are lower-cased.
  HttpHeaders headers;
  std::string body;

  // Header returns the first value of the (case-insensitive) header `name`.
  std::optional<std::string> Header(absl::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Send performs one exchange. Thread-safe in every implementation.
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
};

}  // namespace posthog_gateway

#endif  // SERVER_HTTP_HTTP_CLIENT_H_
