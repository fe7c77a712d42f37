#ifndef SERVER_POSTHOG_PROJECT_REGISTRY_H_
#define SERVER_POSTHOG_PROJECT_REGISTRY_H_

// ProjectRegistry resolves the `project` field of a request (an alias, or
// empty for the default) to that project's PostHogClient.
//
// Immutable after construction, so thread-safe.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/http/http_client.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway {

class ProjectRegistry final {
 public:
  // Creates one client per configured project. Borrows `keys` and `http`.
  ProjectRegistry(const GatewayConfig& config, const KeyStore* keys, HttpClient* http);

  ProjectRegistry(const ProjectRegistry&) = delete;
  ProjectRegistry& operator=(const ProjectRegistry&) = delete;

  // Resolve returns the client of `alias` (the default project when empty),
  // or INVALID_ARGUMENT with a BadRequest violation on `field` that says how
  // many projects are configured, never which (`alias` is echoed only when
  // it is at most 64 printable ASCII characters).
  absl::StatusOr<const PostHogClient*> Resolve(absl::string_view alias,
                                               absl::string_view field = "project") const;

  // Clients returns every project's client, by alias.
  std::vector<const PostHogClient*> Clients() const;

 private:
  std::string default_alias_;
  std::map<std::string, std::unique_ptr<PostHogClient>, std::less<>> clients_;
};

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_PROJECT_REGISTRY_H_
