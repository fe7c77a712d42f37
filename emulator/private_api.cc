#include "emulator/private_api.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "emulator/api_errors.h"
#include "emulator/http_util.h"

namespace posthog_emulator {

absl::StatusOr<nlohmann::json> ParseJsonBody(const httplib::Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    return ValidationError("parse_error",
                           "JSON parse error - Expecting value: line 1 column 1 (char 0)");
  }
  return body;
}

absl::StatusOr<AuthorizedRequest> AuthorizePrivate(EmulatorState& state,
                                                   const httplib::Request& req, RequestContext& ctx,
                                                   const nlohmann::json* body,
                                                   const std::string& project_id,
                                                   const std::string& scope,
                                                   ThrottleClass throttle) {
  AuthorizedRequest out;
  out.directory = state.directory();
  ctx.auth = FindPersonalKeySource(req, body);
  absl::StatusOr<Principal> principal = AuthenticatePersonalKey(*out.directory, req, body);
  if (!principal.ok()) return principal.status();
  out.principal = *principal;
  // Throttles bucket on the hashed key, as PostHog's cache identity does.
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const std::string& key = principal->key->value;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  const std::string bucket = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  if (auto wait = state.rate_limiter().Check(throttle, bucket)) {
    return ThrottledError(*wait);
  }
  if (!project_id.empty()) {
    absl::StatusOr<const Project*> project =
        AuthorizeProject(*out.directory, out.principal, project_id, scope);
    if (!project.ok()) return project.status();
    out.project = *project;
  } else if (!HasScope(*principal->key, scope)) {
    return PermissionDeniedError("API key missing required scope '" + scope + "'");
  }
  return out;
}

void SetError(httplib::Response& res, const absl::Status& status) {
  HttpError error = ToHttpError(status);
  SetJson(res, error.status, error.body);
}

}  // namespace posthog_emulator
