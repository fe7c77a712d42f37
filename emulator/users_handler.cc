#include "emulator/users_handler.h"

#include <string>

#include "emulator/api_errors.h"
#include "emulator/http_util.h"
#include "emulator/private_api.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

json TeamBasic(const Project& p) {
  return {{"id", p.id},
          {"uuid", p.uuid},
          {"organization", p.organization_id},
          {"project_id", p.id},
          {"api_token", p.api_token},
          {"name", p.name},
          {"completed_snippet_onboarding", true},
          {"has_completed_onboarding_for", json::object()},
          {"ingested_event", true},
          {"is_demo", false},
          {"timezone", p.timezone},
          {"access_control", false}};
}

json OrganizationJson(const Directory& directory, const Organization& org) {
  json teams = json::array();
  json projects = json::array();
  for (const Project* p : directory.ProjectsOfOrganization(org.id)) {
    teams.push_back(TeamBasic(*p));
    projects.push_back({{"id", p->id}, {"name", p->name}, {"organization_id", org.id}});
  }
  json out = {{"id", org.id},
              {"name", org.name},
              {"slug", org.name},
              {"logo_media_id", nullptr},
              {"created_at", "2024-01-01T00:00:00Z"},
              {"updated_at", "2024-01-01T00:00:00Z"},
              {"membership_level", 15},
              {"plugins_access_level", 9},
              {"teams", teams},
              {"projects", projects},
              {"available_product_features", json::array()},
              {"is_member_join_email_enabled", true},
              {"metadata", json::object()},
              {"customer_id", nullptr},
              {"enforce_2fa", nullptr},
              {"member_count", 1}};
  for (auto it = org.extra.begin(); it != org.extra.end(); ++it) {
    out[it.key()] = *it;
  }
  return out;
}

}  // namespace

json UserJson(const Directory& directory, const User& user) {
  const Project* team = directory.ProjectById(user.current_project_id);
  const Organization* org = user.organization_ids.empty()
                                ? nullptr
                                : directory.OrganizationById(user.organization_ids[0]);
  json organizations = json::array();
  for (const std::string& id : user.organization_ids) {
    const Organization* o = directory.OrganizationById(id);
    if (o == nullptr) continue;
    organizations.push_back({{"id", o->id},
                             {"name", o->name},
                             {"slug", o->name},
                             {"logo_media_id", nullptr},
                             {"membership_level", 15},
                             {"members_can_use_personal_api_keys", true}});
  }
  return {{"date_joined", user.date_joined},
          {"uuid", user.uuid},
          {"distinct_id", user.distinct_id},
          {"first_name", user.first_name},
          {"last_name", user.last_name},
          {"email", user.email},
          {"pending_email", nullptr},
          {"is_email_verified", true},
          {"notification_settings",
           {{"plugin_disabled", true}, {"project_weekly_digest_disabled", {}}}},
          {"anonymize_data", false},
          {"toolbar_mode", "toolbar"},
          {"has_password", true},
          {"id", user.id},
          {"is_staff", user.is_staff},
          {"is_impersonated", false},
          {"is_impersonated_until", nullptr},
          {"sensitive_session_expires_at", nullptr},
          {"team", team != nullptr ? TeamBasic(*team) : json()},
          {"organization", org != nullptr ? OrganizationJson(directory, *org) : json()},
          {"organizations", organizations},
          {"events_column_config", {{"active", "DEFAULT"}}},
          {"is_2fa_enabled", false},
          {"has_social_auth", false},
          {"has_sso_enforcement", false},
          {"has_seen_product_intro_for", json::object()},
          {"scene_personalisation", json::array()},
          {"theme_mode", nullptr},
          {"hedgehog_config", nullptr},
          {"role_at_organization", nullptr}};
}

void HandleUser(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                RequestContext& ctx) {
  absl::StatusOr<json> body = ParseJsonBody(req);
  absl::StatusOr<AuthorizedRequest> auth = AuthorizePrivate(
      state, req, ctx, body.ok() ? &*body : nullptr, "", "user:read", ThrottleClass::kDefault);
  if (!auth.ok()) return SetError(res, auth.status());
  if (req.method != "GET") {
    return SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
  }
  const std::string who = req.matches[1];
  const User& user = *auth->principal.user;
  if (who != "@me" && who != user.uuid) {
    if (!user.is_staff) {
      return SetError(res, PermissionDeniedError("As a non-staff user you're only allowed to "
                                                 "access the `@me` user instance."));
    }
    return SetError(res, NotFoundError());
  }
  SetJson(res, 200, UserJson(*auth->directory, user));
}

}  // namespace posthog_emulator
