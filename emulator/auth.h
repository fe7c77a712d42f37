#ifndef EMULATOR_AUTH_H_
#define EMULATOR_AUTH_H_

// PostHog's authentication rules for the private API and the flag
// definitions endpoint, as pure functions over a Directory and a request.
//
// Private API (Django PersonalAPIKeyAuthentication): the personal key is
// taken from `Authorization: Bearer`, else the JSON body's
// `personal_api_key`, else the `personal_api_key` query parameter; only the
// first one found is tried. Errors are the Status builders of api_errors.h
// and never contain the key. Thread-safe (no state).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "emulator/directory.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// How a request authenticated, as reported by /_emulator/requests.
enum class AuthMethod { kNone, kBearer, kBody, kQuery, kToken };

// AuthMethodName returns "none", "bearer", "body", "query" or "token".
absl::string_view AuthMethodName(AuthMethod method);

// Principal is the owner of a valid personal API key. Pointers are into the
// Directory the caller keeps alive.
struct Principal {
  const User* user = nullptr;
  const PersonalApiKey* key = nullptr;
  AuthMethod method = AuthMethod::kNone;
};

// FindPersonalKeySource returns where the first personal-key candidate sits
// (kBearer, kBody, kQuery) or kNone. `body` may be null (no JSON body).
AuthMethod FindPersonalKeySource(const httplib::Request& req, const nlohmann::json* body);

// AuthenticatePersonalKey applies PostHog's rules: 401 not_authenticated
// when no candidate is present; 401 authentication_failed "Personal API key
// found in request <source> is invalid." when the first candidate is unknown.
absl::StatusOr<Principal> AuthenticatePersonalKey(const Directory& directory,
                                                  const httplib::Request& req,
                                                  const nlohmann::json* body);

// HasScope is true when the key grants `required` ("object:read" or
// "object:write"): "*" grants all, and write implies read.
bool HasScope(const PersonalApiKey& key, absl::string_view required);

// AuthorizeProject resolves the project named in the URL ("1" or
// "@current") for `principal`: 404 when unknown or not in the user's
// organizations; 403 when the key lacks `required_scope` or is scoped to
// other teams.
absl::StatusOr<const Project*> AuthorizeProject(const Directory& directory,
                                                const Principal& principal,
                                                absl::string_view project_id,
                                                absl::string_view required_scope);

// AuthenticateDefinitions applies the Rust definitions endpoint's rules for
// `project`: `Authorization: Bearer` only, either the project's `phs_`
// secret token or a personal key (scopes "*", none, feature_flag:read or
// feature_flag:write) of a member of the project's organization.
absl::Status AuthenticateDefinitions(const Directory& directory, const httplib::Request& req,
                                     const Project& project);

}  // namespace posthog_emulator

#endif  // EMULATOR_AUTH_H_
