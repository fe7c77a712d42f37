#include "emulator/auth.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "emulator/api_errors.h"

namespace posthog_emulator {
namespace {

// BearerToken returns the token of `Authorization: Bearer <token>`, or "".
std::string BearerToken(const httplib::Request& req) {
  const std::string header = req.get_header_value("Authorization");
  if (header.size() < 7 || !absl::StartsWithIgnoreCase(header, "bearer ")) {
    return "";
  }
  return std::string(absl::StripAsciiWhitespace(header.substr(7)));
}

struct Candidate {
  std::string key;
  AuthMethod method = AuthMethod::kNone;
};

Candidate FindCandidate(const httplib::Request& req, const nlohmann::json* body) {
  std::string bearer = BearerToken(req);
  // OAuth access tokens are left to the OAuth authenticator.
  if (!bearer.empty() && !absl::StartsWith(bearer, "pha_")) {
    return {bearer, AuthMethod::kBearer};
  }
  if (body != nullptr && body->is_object()) {
    auto it = body->find("personal_api_key");
    if (it != body->end() && it->is_string() && !it->get<std::string>().empty()) {
      return {it->get<std::string>(), AuthMethod::kBody};
    }
  }
  if (req.has_param("personal_api_key")) {
    std::string value = req.get_param_value("personal_api_key");
    if (!value.empty()) return {value, AuthMethod::kQuery};
  }
  return {};
}

absl::string_view SourceName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kBearer:
      return "Authorization header";
    case AuthMethod::kBody:
      return "body";
    default:
      return "query string";
  }
}

}  // namespace

absl::string_view AuthMethodName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kBearer:
      return "bearer";
    case AuthMethod::kBody:
      return "body";
    case AuthMethod::kQuery:
      return "query";
    case AuthMethod::kToken:
      return "token";
    case AuthMethod::kNone:
      break;
  }
  return "none";
}

AuthMethod FindPersonalKeySource(const httplib::Request& req, const nlohmann::json* body) {
  return FindCandidate(req, body).method;
}

absl::StatusOr<Principal> AuthenticatePersonalKey(const Directory& directory,
                                                  const httplib::Request& req,
                                                  const nlohmann::json* body) {
  Candidate candidate = FindCandidate(req, body);
  if (candidate.method == AuthMethod::kNone) return NotAuthenticatedError();
  const PersonalApiKey* key = directory.KeyByValue(candidate.key);
  const User* user = key == nullptr ? nullptr : directory.UserById(key->user_id);
  if (user == nullptr) {
    return AuthenticationFailedError(absl::StrCat("Personal API key found in request ",
                                                  SourceName(candidate.method), " is invalid."));
  }
  return Principal{user, key, candidate.method};
}

bool HasScope(const PersonalApiKey& key, absl::string_view required) {
  const std::string object(required.substr(0, required.find(':')));
  for (const std::string& scope : key.scopes) {
    if (scope == "*" || scope == required) return true;
    if (absl::EndsWith(required, ":read") && scope == object + ":write") {
      return true;
    }
  }
  return false;
}

absl::StatusOr<const Project*> AuthorizeProject(const Directory& directory,
                                                const Principal& principal,
                                                absl::string_view project_id,
                                                absl::string_view required_scope) {
  int64_t id = 0;
  if (project_id == "@current") {
    id = principal.user->current_project_id;
  } else if (!absl::SimpleAtoi(project_id, &id)) {
    return NotFoundError();
  }
  const Project* project = directory.ProjectById(id);
  if (project == nullptr || !directory.UserCanAccessProject(*principal.user, *project)) {
    return NotFoundError();
  }
  const PersonalApiKey& key = *principal.key;
  if (!key.scoped_teams.empty() &&
      std::find(key.scoped_teams.begin(), key.scoped_teams.end(), id) == key.scoped_teams.end()) {
    return PermissionDeniedError(
        absl::StrCat("API key does not have access to the requested project: ID ", id, "."));
  }
  if (!key.scoped_organizations.empty() &&
      std::find(key.scoped_organizations.begin(), key.scoped_organizations.end(),
                project->organization_id) == key.scoped_organizations.end()) {
    return PermissionDeniedError("API key does not have access to the requested organization.");
  }
  if (!HasScope(key, required_scope)) {
    return PermissionDeniedError(
        absl::StrCat("API key missing required scope '", required_scope, "'"));
  }
  return project;
}

absl::Status AuthenticateDefinitions(const Directory& directory, const httplib::Request& req,
                                     const Project& project) {
  const std::string token = BearerToken(req);
  if (token.empty()) return NotAuthenticatedError();
  if (absl::StartsWith(token, "phs_")) {
    if (!project.secret_api_token.empty() && token == project.secret_api_token) {
      return absl::OkStatus();
    }
    return AuthenticationFailedError("Secret API token is invalid.");
  }
  const PersonalApiKey* key = directory.KeyByValue(token);
  const User* user = key == nullptr ? nullptr : directory.UserById(key->user_id);
  if (user == nullptr || !directory.UserCanAccessProject(*user, project)) {
    return AuthenticationFailedError(
        "Personal API key found in request Authorization header is invalid.");
  }
  if (!key->scoped_teams.empty() && std::find(key->scoped_teams.begin(), key->scoped_teams.end(),
                                              project.id) == key->scoped_teams.end()) {
    return PermissionDeniedError(absl::StrCat(
        "API key does not have access to the requested project: ID ", project.id, "."));
  }
  if (!key->scopes.empty() && !HasScope(*key, "feature_flag:read")) {
    return PermissionDeniedError("API key missing required scope 'feature_flag:read'");
  }
  return absl::OkStatus();
}

}  // namespace posthog_emulator
