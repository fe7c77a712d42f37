#ifndef SERVER_POSTHOG_PERSONAL_KEY_ROUTES_H_
#define SERVER_POSTHOG_PERSONAL_KEY_ROUTES_H_

// The personal API key's allow-list: the only PostHog routes (method and
// path template) a request carrying the personal key may reach.
// PostHogClient::Send refuses any other before a byte leaves.
//
// kPersonalKeyRoutes below is the whole list, in one place: a new RPC that
// needs a new PostHog route adds one line to it (and nothing else here).
// Placeholders in a template match one path segment:
//   {project}  the calling client's configured project id, exactly;
//   {id}       a positive decimal integer (a flag id, a person id);
//   {uuid}     a UUID (8-4-4-4-12 hex digits);
//   {person}   {uuid} or {id} (PostHog takes either for a person).
// Every other segment matches literally. A template ending in '/' matches
// only paths ending in '/'. The query is not part of the match (it is
// encoded by UpstreamUrl and cannot change the route).
//
// Thread-safe: constant data and pure functions.

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway {

struct PersonalKeyRoute {
  absl::string_view method;
  absl::string_view path;
};

inline constexpr PersonalKeyRoute kPersonalKeyRoutes[] = {
    // UserService.GetCurrentUser.
    {"GET", "/api/users/@me/"},
    // PersonService: ListPersons and the distinct-id lookup, GetPerson,
    // DeletePerson, UpdatePersonProperties.
    {"GET", "/api/projects/{project}/persons/"},
    {"GET", "/api/projects/{project}/persons/{person}/"},
    {"DELETE", "/api/projects/{project}/persons/{person}/"},
    {"POST", "/api/projects/{project}/persons/{person}/update_property/"},
    {"POST", "/api/projects/{project}/persons/{person}/delete_property/"},
    // FlagService: ListFlags, CreateFlag, GetFlag, UpdateFlag and DeleteFlag
    // (a soft delete: PATCH deleted=true).
    {"GET", "/api/projects/{project}/feature_flags/"},
    {"POST", "/api/projects/{project}/feature_flags/"},
    {"GET", "/api/projects/{project}/feature_flags/{id}/"},
    {"PATCH", "/api/projects/{project}/feature_flags/{id}/"},
    // GroupService: ListGroupTypes, ListGroups, CreateGroup, GetGroup and
    // UpdateGroupProperties (type index and key travel in the query).
    {"GET", "/api/projects/{project}/groups_types/"},
    {"GET", "/api/projects/{project}/groups/"},
    {"POST", "/api/projects/{project}/groups/"},
    {"GET", "/api/projects/{project}/groups/find/"},
    {"POST", "/api/projects/{project}/groups/update_property/"},
    {"POST", "/api/projects/{project}/groups/delete_property/"},
    // Flag definitions for local evaluation, when no secure key is set.
    {"GET", "/flags/definitions"},
};

// MatchPersonalKeyRoute returns the template of kPersonalKeyRoutes that
// `method` and `url` (a parsed canonical target) match for `project_id`, or
// nullopt when none does.
std::optional<absl::string_view> MatchPersonalKeyRoute(absl::string_view method,
                                                       const UpstreamUrl& url, int64_t project_id);

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_PERSONAL_KEY_ROUTES_H_
