#include "emulator/directory.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

std::string Str(const json& obj, const char* name, std::string fallback = "") {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

// Deterministic UUID-shaped string for entries the seed leaves without one.
std::string SyntheticUuid(absl::string_view kind, int64_t id) {
  char buf[40];
  snprintf(buf, sizeof(buf), "0190%04x-0000-7000-8000-%012llx",
           static_cast<unsigned>(kind.empty() ? 0 : kind[0]), static_cast<unsigned long long>(id));
  return buf;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Directory>> Directory::FromSeed(const json& seed) {
  std::shared_ptr<Directory> dir(new Directory());
  RETURN_IF_ERROR(dir->Add(seed));
  return std::shared_ptr<const Directory>(std::move(dir));
}

absl::StatusOr<std::shared_ptr<const Directory>> Directory::Merged(const json& seed) const {
  std::shared_ptr<Directory> dir(new Directory(*this));
  RETURN_IF_ERROR(dir->Add(seed));
  return std::shared_ptr<const Directory>(std::move(dir));
}

absl::Status Directory::Add(const json& seed) {
  if (!seed.is_object()) return absl::InvalidArgumentError("seed: not an object");
  for (const json& o : seed.value("organizations", json::array())) {
    Organization org;
    org.id = Str(o, "id");
    if (org.id.empty()) {
      return absl::InvalidArgumentError("seed: organization without id");
    }
    org.name = Str(o, "name", "Organization");
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (it.key() != "id" && it.key() != "name") org.extra[it.key()] = *it;
    }
    organizations_[org.id] = std::move(org);
  }
  for (const json& p : seed.value("projects", json::array())) {
    Project project;
    if (!p.contains("id") || !p["id"].is_number_integer()) {
      return absl::InvalidArgumentError("seed: project without integer id");
    }
    project.id = p["id"].get<int64_t>();
    project.uuid = Str(p, "uuid", SyntheticUuid("project", project.id));
    project.organization_id = Str(p, "organization_id");
    if (project.organization_id.empty() && !organizations_.empty()) {
      project.organization_id = organizations_.begin()->first;
    }
    project.name = Str(p, "name", absl::StrCat("Project ", project.id));
    project.api_token = Str(p, "api_token");
    if (project.api_token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("seed: project ", project.id, " without api_token"));
    }
    project.secret_api_token = Str(p, "secret_api_token");
    project.timezone = Str(p, "timezone", "UTC");
    for (const json& g : p.value("group_types", json::array())) {
      if (g.is_string()) project.group_types.push_back(g.get<std::string>());
    }
    auto old = projects_.find(project.id);
    if (old != projects_.end()) project_by_token_.erase(old->second.api_token);
    project_by_token_[project.api_token] = project.id;
    projects_[project.id] = std::move(project);
  }
  for (const json& u : seed.value("users", json::array())) {
    User user;
    if (!u.contains("id") || !u["id"].is_number_integer()) {
      return absl::InvalidArgumentError("seed: user without integer id");
    }
    user.id = u["id"].get<int64_t>();
    user.uuid = Str(u, "uuid", SyntheticUuid("user", user.id));
    user.distinct_id = Str(u, "distinct_id", user.uuid);
    user.first_name = Str(u, "first_name");
    user.last_name = Str(u, "last_name");
    user.email = Str(u, "email");
    user.date_joined = Str(u, "date_joined", "2024-01-01T00:00:00Z");
    user.is_staff = u.value("is_staff", false);
    for (const json& o : u.value("organization_ids", json::array())) {
      if (o.is_string()) user.organization_ids.push_back(o.get<std::string>());
    }
    if (user.organization_ids.empty() && !organizations_.empty()) {
      user.organization_ids.push_back(organizations_.begin()->first);
    }
    user.current_project_id = u.value("current_project_id", int64_t{0});
    if (user.current_project_id == 0) {
      for (const auto& [id, project] : projects_) {
        if (!user.organization_ids.empty() && project.organization_id == user.organization_ids[0]) {
          user.current_project_id = id;
          break;
        }
      }
    }
    users_[user.id] = std::move(user);
  }
  for (const json& k : seed.value("personal_api_keys", json::array())) {
    PersonalApiKey key;
    key.value = Str(k, "value");
    if (key.value.empty()) {
      return absl::InvalidArgumentError("seed: personal_api_key without value");
    }
    key.id = Str(k, "id", SyntheticUuid("key", keys_.size() + 1));
    key.label = Str(k, "label", "key");
    key.user_id = k.value("user_id", int64_t{0});
    if (users_.find(key.user_id) == users_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("seed: personal_api_key ", key.id, " has unknown user_id"));
    }
    for (const json& s : k.value("scopes", json::array({"*"}))) {
      key.scopes.push_back(s.get<std::string>());
    }
    for (const json& t : k.value("scoped_teams", json::array())) {
      key.scoped_teams.push_back(t.get<int64_t>());
    }
    for (const json& o : k.value("scoped_organizations", json::array())) {
      key.scoped_organizations.push_back(o.get<std::string>());
    }
    keys_[key.value] = std::move(key);
  }
  return absl::OkStatus();
}

const Project* Directory::ProjectById(int64_t id) const {
  auto it = projects_.find(id);
  return it == projects_.end() ? nullptr : &it->second;
}

const Project* Directory::ProjectByToken(absl::string_view api_token) const {
  auto it = project_by_token_.find(api_token);
  return it == project_by_token_.end() ? nullptr : ProjectById(it->second);
}

const Organization* Directory::OrganizationById(absl::string_view id) const {
  auto it = organizations_.find(std::string(id));
  return it == organizations_.end() ? nullptr : &it->second;
}

const User* Directory::UserById(int64_t id) const {
  auto it = users_.find(id);
  return it == users_.end() ? nullptr : &it->second;
}

const PersonalApiKey* Directory::KeyByValue(absl::string_view value) const {
  auto it = keys_.find(std::string(value));
  return it == keys_.end() ? nullptr : &it->second;
}

std::vector<const Project*> Directory::Projects() const {
  std::vector<const Project*> out;
  for (const auto& [id, project] : projects_) out.push_back(&project);
  return out;
}

std::vector<const Project*> Directory::ProjectsOfOrganization(
    absl::string_view organization_id) const {
  std::vector<const Project*> out;
  for (const auto& [id, project] : projects_) {
    if (project.organization_id == organization_id) out.push_back(&project);
  }
  return out;
}

bool Directory::UserCanAccessProject(const User& user, const Project& project) const {
  return std::find(user.organization_ids.begin(), user.organization_ids.end(),
                   project.organization_id) != user.organization_ids.end();
}

}  // namespace posthog_emulator
