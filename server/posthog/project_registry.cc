#include "server/posthog/project_registry.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
  std::vector<std::string> known;
  for (const auto& [name, client] : clients_) known.push_back(name);
  const std::string description =
      absl::StrCat("no project \"", alias, "\" is configured in the gateway; known: ",
                   absl::StrJoin(known, ", "));
  return InvalidArgumentWithViolations(description,
                                       {{std::string(field), description}});
}

}  // namespace posthog_gateway
