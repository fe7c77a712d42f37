#ifndef EMULATOR_USERS_HANDLER_H_
#define EMULATOR_USERS_HANDLER_H_

// `GET /api/users/@me/` (docs/posthog-api.md §4): the owner of the personal key,
// with `team` (TeamBasicSerializer), `organization` and `organizations`.
// Scope user:read; default throttles. Another user's uuid gives 403 for
// non-staff users. Thread-safe.

#include "emulator/handler.h"
#include "emulator/state.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// UserJson renders `user` as UserSerializer does.
nlohmann::json UserJson(const Directory& directory, const User& user);

void HandleUser(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                RequestContext& ctx);

}  // namespace posthog_emulator

#endif  // EMULATOR_USERS_HANDLER_H_
