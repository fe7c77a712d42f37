#include "server/posthog/project_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"

namespace posthog_gateway {
namespace {

constexpr size_t kMaxEchoedAliasLength = 64;

}  // namespace

ProjectRegistry::ProjectRegistry(const GatewayConfig& config, const KeyStore* keys,
                                 HttpClient* http)
    : default_alias_(config.default_project) {
  for (const ProjectConfig& project : config.projects) {
    clients_[project.alias] = std::make_unique<PostHogClient>(project, config.upstream, keys, http);
  }
}

absl::StatusOr<const PostHogClient*> ProjectRegistry::Resolve(absl::string_view alias,
                                                              absl::string_view field) const {
  auto it = clients_.find(alias.empty() ? absl::string_view(default_alias_) : alias);
  if (it != clients_.end()) return it->second.get();
  // The configured aliases are not listed (they map the deployment); the
  // caller's value is echoed only when short and printable.
  const bool echo =
      alias.size() <= kMaxEchoedAliasLength &&
      std::all_of(alias.begin(), alias.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  const std::string description = absl::StrCat(
      echo ? absl::StrCat("no project \"", alias, "\"") : std::string("no such project"),
      " is configured in the gateway (", clients_.size(),
      clients_.size() == 1 ? " project is" : " projects are", " configured)");
  absl::Status status =
      InvalidArgumentWithViolations(description, {{std::string(field), description}});
  AttachErrorInfo(status, reasons::kUnknownProject,
                  {{"project", echo ? std::string(alias) : std::string("(not printable)")}});
  return status;
}

std::vector<const PostHogClient*> ProjectRegistry::Clients() const {
  std::vector<const PostHogClient*> clients;
  for (const auto& [alias, client] : clients_) clients.push_back(client.get());
  return clients;
}

}  // namespace posthog_gateway
