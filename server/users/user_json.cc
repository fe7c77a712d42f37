#include "server/users/user_json.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/common/status_macros.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using posthog::v1::Organization;
using posthog::v1::Team;
using posthog::v1::User;

// Typed reads of optional members: absent or null leaves the default; a
// member of another type is an error naming it.
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  absl::StatusOr<std::string> String(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr) return std::string();
    if (value->is_string()) return value->get<std::string>();
    if (value->is_number()) return value->dump();  // Ids PostHog sends as numbers.
    return Error(key, "a string");
  }

  absl::StatusOr<int64_t> Int(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr) return 0;
    if (value->is_number_integer()) return value->get<int64_t>();
    return Error(key, "an integer");
  }

  absl::StatusOr<bool> Bool(const char* key) const {
    const json* value = Find(key);
    if (value == nullptr) return false;
    if (value->is_boolean()) return value->get<bool>();
    return Error(key, "a boolean");
  }

  const json* Find(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::string Child(const char* key) const { return absl::StrCat(path_, ".", key); }

 private:
  absl::Status Error(const char* key, const char* expected) const {
    return absl::InvalidArgumentError(
        absl::StrCat("PostHog's user: ", Child(key), " is not ", expected));
  }

  const json& object_;
  std::string path_;
};

absl::StatusOr<Team> TeamFromJson(const json& value, const std::string& path) {
  Team team;
  if (!value.is_object()) return team;
  Reader r(value, path);
  ASSIGN_OR_RETURN(int64_t id, r.Int("id"));
  team.set_id(id);
  ASSIGN_OR_RETURN(*team.mutable_uuid(), r.String("uuid"));
  ASSIGN_OR_RETURN(*team.mutable_name(), r.String("name"));
  ASSIGN_OR_RETURN(*team.mutable_organization_id(), r.String("organization"));
  ASSIGN_OR_RETURN(*team.mutable_timezone(), r.String("timezone"));
  ASSIGN_OR_RETURN(bool is_demo, r.Bool("is_demo"));
  team.set_is_demo(is_demo);
  ASSIGN_OR_RETURN(bool ingested_event, r.Bool("ingested_event"));
  team.set_ingested_event(ingested_event);
  return team;
}

absl::StatusOr<Organization> OrganizationFromJson(const json& value, const std::string& path) {
  Organization organization;
  if (!value.is_object()) return organization;
  Reader r(value, path);
  ASSIGN_OR_RETURN(*organization.mutable_id(), r.String("id"));
  ASSIGN_OR_RETURN(*organization.mutable_name(), r.String("name"));
  ASSIGN_OR_RETURN(*organization.mutable_slug(), r.String("slug"));
  ASSIGN_OR_RETURN(int64_t level, r.Int("membership_level"));
  organization.set_membership_level(static_cast<int32_t>(level));
  if (const json* teams = r.Find("teams"); teams != nullptr && teams->is_array()) {
    for (size_t i = 0; i < teams->size(); ++i) {
      ASSIGN_OR_RETURN(*organization.add_teams(),
                       TeamFromJson((*teams)[i], absl::StrCat(path, ".teams[", i, "]")));
    }
  }
  return organization;
}

}  // namespace

absl::StatusOr<User> UserFromJson(const json& body) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError("PostHog's user is not a JSON object");
  }
  User user;
  Reader r(body, "user");
  ASSIGN_OR_RETURN(*user.mutable_uuid(), r.String("uuid"));
  ASSIGN_OR_RETURN(*user.mutable_distinct_id(), r.String("distinct_id"));
  ASSIGN_OR_RETURN(*user.mutable_first_name(), r.String("first_name"));
  ASSIGN_OR_RETURN(*user.mutable_last_name(), r.String("last_name"));
  ASSIGN_OR_RETURN(*user.mutable_email(), r.String("email"));
  ASSIGN_OR_RETURN(bool verified, r.Bool("is_email_verified"));
  user.set_is_email_verified(verified);
  ASSIGN_OR_RETURN(bool is_staff, r.Bool("is_staff"));
  user.set_is_staff(is_staff);
  ASSIGN_OR_RETURN(*user.mutable_role_at_organization(), r.String("role_at_organization"));
  ASSIGN_OR_RETURN(bool two_factor, r.Bool("is_2fa_enabled"));
  user.set_is_2fa_enabled(two_factor);

  ASSIGN_OR_RETURN(std::string joined, r.String("date_joined"));
  if (!joined.empty()) {
    absl::Time time;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, joined, &time, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("PostHog's user: user.date_joined is not a time: ", error));
    }
    const int64_t seconds = absl::ToUnixSeconds(time);
    user.mutable_join_time()->set_seconds(seconds);
    user.mutable_join_time()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
  }
  if (const json* team = r.Find("team")) {
    ASSIGN_OR_RETURN(*user.mutable_team(), TeamFromJson(*team, "user.team"));
  }
  if (const json* organization = r.Find("organization")) {
    ASSIGN_OR_RETURN(*user.mutable_organization(),
                     OrganizationFromJson(*organization, "user.organization"));
  }
  if (const json* organizations = r.Find("organizations");
      organizations != nullptr && organizations->is_array()) {
    for (size_t i = 0; i < organizations->size(); ++i) {
      ASSIGN_OR_RETURN(
          *user.add_organizations(),
          OrganizationFromJson((*organizations)[i], absl::StrCat("user.organizations[", i, "]")));
    }
  }

  static const std::set<std::string> kModelled = {
      "uuid",           "distinct_id",       "first_name", "last_name",
      "email",          "is_email_verified", "is_staff",   "role_at_organization",
      "is_2fa_enabled", "date_joined",       "team",       "organization",
      "organizations"};
  json extra = json::object();
  for (const auto& item : body.items()) {
    if (kModelled.count(item.key()) == 0) extra[item.key()] = item.value();
  }
  *user.mutable_extra() = StructFromJson(extra);
  return user;
}

}  // namespace posthog_gateway
