#ifndef SERVER_POSTHOG_POSTHOG_CLIENT_H_
#define SERVER_POSTHOG_POSTHOG_CLIENT_H_

// PostHogClient is the typed client of one PostHog project: one method per
// REST operation, JSON in and out converted to the API's messages, every
// outcome mapped to a status by StatusFromHttpResponse.
//
// Key handling is here and only here: the personal API key is sent only as
// `Authorization: Bearer`, and only to the project's configured app host.
//
// Thread-safe. Borrows the KeyStore and HttpClient, which must outlive it.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/user.pb.h"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/http/http_client.h"
#include "server/posthog/call_context.h"

namespace posthog_gateway {

class PostHogClient final {
 public:
  PostHogClient(ProjectConfig project, const UpstreamConfig& upstream,
                const KeyStore* keys, HttpClient* http);

  PostHogClient(const PostHogClient&) = delete;
  PostHogClient& operator=(const PostHogClient&) = delete;

  const ProjectConfig& project() const { return project_; }

  // GetCurrentUser calls `GET /api/users/@me/`.
  absl::StatusOr<posthog::v1::User> GetCurrentUser(const CallContext& context) const;

 private:
  // CallPrivateApi sends `method path` to the app host with the personal API
  // key and returns the parsed JSON body of a 2xx answer.
  absl::StatusOr<nlohmann::json> CallPrivateApi(absl::string_view method,
                                                absl::string_view path,
                                                const CallContext& context) const;

  // The HTTP deadline for a call: the caller's minus the margin.
  absl::Time Deadline(const CallContext& context) const;

  const ProjectConfig project_;
  const UpstreamConfig upstream_;
  const KeyStore* keys_;
  HttpClient* http_;
};

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_POSTHOG_CLIENT_H_
