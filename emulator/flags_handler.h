#ifndef EMULATOR_FLAGS_HANDLER_H_
#define EMULATOR_FLAGS_HANDLER_H_

// Feature flag routes (docs/posthog-api.md §2):
//   * CRUD under `/api/projects/:id/feature_flags/` (scopes
//     feature_flag:read/write, default throttles; hard DELETE is 405);
//   * definitions for local evaluation, `GET /flags/definitions?token=` and
//     the legacy `GET /api/feature_flag/local_evaluation/?token=`, with a
//     weak ETag and 304 on If-None-Match (600/minute per project when rate
//     limits are on);
//   * remote evaluation `POST /flags` (v=2 shape, or v1 without `v`) and
//     `POST /decide` (v=3 -> v1 shape, v>=4 -> v2 shape), evaluated by
//     FlagMatcher against the stored person merged with the request's
//     person_properties.
// Thread-safe.

#include "emulator/handler.h"
#include "emulator/state.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// DefinitionsJson builds the local-evaluation payload of project `team_id`.
nlohmann::json DefinitionsJson(EmulatorState& state, int64_t team_id);

void HandleFlagCollection(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                          RequestContext& ctx);
void HandleFlagItem(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                    RequestContext& ctx);
void HandleDefinitions(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                       RequestContext& ctx);
// `decide` selects /decide's versioning instead of /flags'.
void HandleRemoteEvaluation(EmulatorState& state, bool decide, const httplib::Request& req,
                            httplib::Response& res, RequestContext& ctx);

}  // namespace posthog_emulator

#endif  // EMULATOR_FLAGS_HANDLER_H_
