#ifndef EMULATOR_GROUPS_HANDLER_H_
#define EMULATOR_GROUPS_HANDLER_H_

// Groups API under `/api/projects/:id/` and `/api/environments/:id/`
// (PostHog's posthog/api/group.py):
//   GET  groups_types/                      the group types, not paginated
//   GET  groups/?group_type_index=N         DRF CursorPagination, newest
//        [&group_key=K] [&search=S]         first, 100 a page, no count;
//        [&cursor=C]                        `next`/`previous` absolute URLs
//   POST groups/                            {group_type_index, group_key,
//                                           group_properties} → 201; a
//                                           duplicate key → 400
//   GET  groups/find/?group_type_index=N&group_key=K        → one, or 404
//   POST groups/update_property/?group_type_index=N&group_key=K  {key, value}
//   POST groups/delete_property/?group_type_index=N&group_key=K  {"$unset": k}
// Scopes group:read / group:write; the default private-API throttles.
//
// The cursor is opaque to clients: base64 of the position of the page's
// last group (its created_at and insertion sequence, which breaks ties as
// DRF's offset does). The next page holds the groups after that position in
// the list's order, so groups created during a listing (newer, so before
// the position) never shift it: no group twice, none skipped. A cursor the
// emulator did not make is 404, as DRF answers ("Invalid cursor").
//
// Thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "emulator/handler.h"
#include "emulator/state.h"
#include "httplib.h"

namespace posthog_emulator {

// HandleGroupTypes serves `groups_types/` (matches[1] = project id).
void HandleGroupTypes(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                      RequestContext& ctx);

// HandleGroups serves `groups/` and its actions (matches[1] = project id,
// matches[2] = action: empty, "find", "update_property" or
// "delete_property").
void HandleGroups(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                  RequestContext& ctx);

// EncodeGroupCursor / DecodeGroupCursor make and read the opaque cursor of
// the position (created_at, sequence). Decode: nullopt when malformed.
std::string EncodeGroupCursor(const std::string& created_at, int64_t sequence);
std::optional<std::pair<std::string, int64_t>> DecodeGroupCursor(const std::string& cursor);

}  // namespace posthog_emulator

#endif  // EMULATOR_GROUPS_HANDLER_H_
