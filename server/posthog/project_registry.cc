#include "server/posthog/project_registry.h"

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"

namespace posthog_gateway {

ProjectRegistry::ProjectRegistry(const GatewayConfig& config, const KeyStore* keys,
                                 HttpClient* http)
    : default_alias_(config.default_project) {
  for (const ProjectConfig& project : config.projects) {
    clients_[project.alias] =
        std::make_unique<PostHogClient>(project, config.upstream, keys, http);
  }
}

absl::StatusOr<const PostHogClient*> ProjectRegistry::Resolve(
    absl::string_view alias, absl::string_view field) const {
  auto it = clients_.find(alias.empty() ? absl::string_view(default_alias_) : alias);
  if (it != clients_.end()) return it->second.get();
  // Neither the configured aliases (they map the deployment) nor the
  // caller's value (it may be anything, of any size) are echoed.
  const std::string description = absl::StrCat(
      "no such project is configured in the gateway (", clients_.size(),
      clients_.size() == 1 ? " project is" : " projects are", " configured)");
  return InvalidArgumentWithViolations(description,
                                       {{std::string(field), description}});
}

std::vector<const PostHogClient*> ProjectRegistry::Clients() const {
  std::vector<const PostHogClient*> clients;
  for (const auto& [alias, client] : clients_) clients.push_back(client.get());
  return clients;
}

}  // namespace posthog_gateway
