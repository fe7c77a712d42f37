#ifndef EMULATOR_DIRECTORY_H_
#define EMULATOR_DIRECTORY_H_

// Directory: the emulator's organizations, projects (teams), users and API
// keys, read from the seed JSON (see emulator/README.md, "Seed format").
//
// A Directory is an immutable value once built: handlers share it through a
// std::shared_ptr<const Directory> and a new seed swaps in a new one, so
// lookups need no lock. Keys are compared as given and never logged.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

struct Organization {
  std::string id;  // a UUID string, as PostHog's organization ids are
  std::string name;
  nlohmann::json extra = nlohmann::json::object();  // merged into responses
};

struct Project {
  int64_t id = 0;
  std::string uuid;
  std::string organization_id;
  std::string name;
  std::string api_token;         // phc_...
  std::string secret_api_token;  // phs_... (may be empty)
  std::string timezone = "UTC";
  // Group type names by index ("0" -> "company").
  std::vector<std::string> group_types;
};

struct User {
  int64_t id = 0;
  std::string uuid;
  std::string distinct_id;
  std::string first_name;
  std::string last_name;
  std::string email;
  std::string date_joined;
  std::vector<std::string> organization_ids;  // first one is the current org
  int64_t current_project_id = 0;
  bool is_staff = false;
};

struct PersonalApiKey {
  std::string id;
  std::string label;
  std::string value;  // phx_... ; secret
  int64_t user_id = 0;
  std::vector<std::string> scopes;  // "*" or "object:action"
  std::vector<int64_t> scoped_teams;
  std::vector<std::string> scoped_organizations;
};

class Directory final {
 public:
  // FromSeed builds a Directory from the top-level seed object (its
  // "organizations", "projects", "users" and "personal_api_keys"). Returns
  // InvalidArgument naming the first malformed entry.
  static absl::StatusOr<std::shared_ptr<const Directory>> FromSeed(const nlohmann::json& seed);

  // Merged returns a new Directory holding this one's entries plus those of
  // `seed`; entries with an existing id replace the old ones.
  absl::StatusOr<std::shared_ptr<const Directory>> Merged(const nlohmann::json& seed) const;

  const Project* ProjectById(int64_t id) const;
  const Project* ProjectByToken(absl::string_view api_token) const;
  const Organization* OrganizationById(absl::string_view id) const;
  const User* UserById(int64_t id) const;
  const PersonalApiKey* KeyByValue(absl::string_view value) const;

  // Projects in id order.
  std::vector<const Project*> Projects() const;
  std::vector<const Project*> ProjectsOfOrganization(absl::string_view organization_id) const;

  // UserCanAccessProject is true when the user belongs to the project's
  // organization.
  bool UserCanAccessProject(const User& user, const Project& project) const;

 private:
  Directory() = default;
  absl::Status Add(const nlohmann::json& seed);

  std::map<int64_t, Project> projects_;
  std::map<std::string, Organization> organizations_;
  std::map<int64_t, User> users_;
  std::map<std::string, PersonalApiKey> keys_;  // by value
  absl::flat_hash_map<std::string, int64_t> project_by_token_;
};

}  // namespace posthog_emulator

#endif  // EMULATOR_DIRECTORY_H_
