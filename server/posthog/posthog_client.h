#ifndef SERVER_POSTHOG_POSTHOG_CLIENT_H_
#define SERVER_POSTHOG_POSTHOG_CLIENT_H_

// PostHogClient is the client of one PostHog project. It owns what every call
// to PostHog shares: the project's two hosts, its keys, deadlines and trace
// headers, and the mapping of outcomes to a status (StatusFromHttpResponse).
// Domain components (users, capture, persons, flags) build their typed
// REST operations on Send and CallJson.
//
// Key handling is here and only here: keys are attached by kind, never by
// value from callers, and the personal API key is sent only as
// `Authorization: Bearer`, only to the project's configured app host, and
// only to the routes of its allow-list (server/posthog/personal_key_routes.h).
// Every request target must be one UpstreamUrl builds
// (server/posthog/upstream_url.h); Send refuses any other before a byte
// leaves, counts it (RefusedRequests) and logs one line (without the key).
//
// Thread-safe. Borrows the KeyStore and HttpClient, which must outlive it.

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/http/http_client.h"
#include "server/posthog/call_context.h"

namespace posthog_gateway {

// Which of a project's hosts a request goes to.
enum class PostHogHost {
  kIngestion,  // Public endpoints: capture, /flags, /flags/definitions.
  kApp,        // The private API, /api/...
};

// One call to PostHog, before the host and key are applied.
struct PostHogRequest {
  std::string method = "GET";
  PostHogHost host = PostHogHost::kApp;
  // Path and query, starting with '/': "/api/projects/1/persons/?limit=100".
  // Built by UpstreamUrl (server/posthog/upstream_url.h), never by
  // concatenating strings: Send refuses a target that is not canonical.
  std::string path;
  std::string body;
  // Extra headers (Content-Type, Content-Encoding, If-None-Match, ...).
  HttpHeaders headers;
  // The key sent as `Authorization: Bearer`, if any.
  std::optional<KeyKind> bearer;
};

class PostHogClient final {
 public:
  PostHogClient(ProjectConfig project, const UpstreamConfig& upstream, const KeyStore* keys,
                HttpClient* http);

  PostHogClient(const PostHogClient&) = delete;
  PostHogClient& operator=(const PostHogClient&) = delete;

  const ProjectConfig& project() const { return project_; }

  // Send performs `request` and returns PostHog's answer whatever its HTTP
  // status (map it with StatusFromHttpResponse, or use CallJson). Fails only
  // when no answer arrived (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED), when
  // the key is not loaded (FAILED_PRECONDITION), or when the request is
  // refused before it is sent (INTERNAL with ErrorInfo
  // UPSTREAM_REQUEST_REFUSED: a bug, since callers validate their ids): its
  // target is not canonical, or it carries the personal key to anywhere but
  // the app host or a route off the allow-list.
  absl::StatusOr<HttpResponse> Send(const PostHogRequest& request,
                                    const CallContext& context) const;

  // CallJson sends `request`, maps a non-2xx answer to its status, and
  // returns the parsed JSON body (null for an empty body). A body that is not
  // JSON is UNAVAILABLE with ErrorInfo UPSTREAM_MALFORMED_RESPONSE.
  absl::StatusOr<nlohmann::json> CallJson(const PostHogRequest& request,
                                          const CallContext& context) const;

  // Key returns a key for a request body that must carry it (capture's
  // `api_key`). Never log or return it.
  absl::StatusOr<Secret> Key(KeyKind kind) const;

  // Describe names a request for messages: method, path without its query
  // (which may hold a token) and project, e.g.
  // `GET /api/users/@me/ for project "demo"`.
  std::string Describe(const PostHogRequest& request) const;

  // RefusedRequests counts the requests Send refused, by reason:
  // "target_not_canonical", "personal_key_off_app_host",
  // "personal_key_route_not_allowed" (every reason, zeros included).
  std::vector<std::pair<std::string, int64_t>> RefusedRequests() const;

 private:
  // The HTTP deadline for a call: the caller's minus the margin.
  absl::Time Deadline(const CallContext& context) const;
  // Refuse counts, logs and returns the refusal of `request` for `reason`
  // (an index of kRefusalReasons).
  absl::Status Refuse(const PostHogRequest& request, size_t reason, absl::string_view why) const;

  const ProjectConfig project_;
  const UpstreamConfig upstream_;
  const KeyStore* keys_;
  HttpClient* http_;
  mutable std::array<std::atomic<int64_t>, 3> refused_{};
};

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_POSTHOG_CLIENT_H_
