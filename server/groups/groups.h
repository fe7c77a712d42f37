#ifndef SERVER_GROUPS_GROUPS_H_
#define SERVER_GROUPS_GROUPS_H_

// Typed PostHog groups operations on a PostHogClient (PostHog's
// posthog/api/group.py; docs/groups.md), through
// `/api/projects/{project_id}/groups_types/` and `.../groups/` with the
// personal API key, and the conversion of PostHog's JSON to posthog.v1
// messages.
//
// A group is named by its type index (0 to 4) and key. Both only ever travel
// in a query built by UpstreamUrl (or a JSON body), after validation:
// an index outside 0 to 4 or a key that is empty, longer than 400 bytes or
// holds NUL is INVALID_ARGUMENT with a BadRequest on the request field, and
// nothing is sent.
//
// Listing groups is not here: ListGroups streams through the paging engine's
// cursor path (server/paging/page_stream.h) with the path and query built
// here.
//
// Thread-safe; borrows the PostHogClient and the pacer.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/group.pb.h"
#include "server/paging/request_pacer.h"
#include "server/posthog/call_context.h"
#include "server/posthog/posthog_client.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway {

// GroupFromJson converts a list item or a found group. INVALID_ARGUMENT when
// `json` is not a group (no integer group_type_index or string group_key).
absl::StatusOr<posthog::v1::Group> GroupFromJson(const nlohmann::json& json);

// GroupTypeFromJson converts one entry of `groups_types/`.
absl::StatusOr<posthog::v1::GroupType> GroupTypeFromJson(const nlohmann::json& json);

// GroupsUrl is the groups endpoint of the client's project
// (`/api/projects/{id}/groups/`); GroupsPath its encoded path.
UpstreamUrl GroupsUrl(const PostHogClient& client);
std::string GroupsPath(const PostHogClient& client);

// GroupsListQuery encodes the request's type and filters as PostHog's list
// query (group_type_index, group_key, search), without cursor.
// INVALID_ARGUMENT (with BadRequest) for a bad index or an over-long filter.
absl::StatusOr<std::string> GroupsListQuery(const posthog::v1::ListGroupsRequest& request);

// GroupListItemId is a listed group's identity within its list (its key),
// for resume tokens.
std::string GroupListItemId(const nlohmann::json& item);

class Groups final {
 public:
  // With a `pacer`, each request waits for its turn under the project's
  // private-API budget.
  explicit Groups(const PostHogClient* client, RequestPacer* pacer = nullptr)
      : client_(client), pacer_(pacer) {}

  // ListTypes returns the project's group types.
  absl::StatusOr<std::vector<posthog::v1::GroupType>> ListTypes(const CallContext& context) const;

  // Get finds one group (`groups/find/`). NOT_FOUND when none has the key.
  absl::StatusOr<posthog::v1::Group> Get(int64_t group_type_index, const std::string& group_key,
                                         const CallContext& context) const;

  // Create creates a group. ALREADY_EXISTS (ErrorInfo
  // UPSTREAM_ALREADY_EXISTS) when PostHog says the key is taken.
  absl::StatusOr<posthog::v1::Group> Create(int64_t group_type_index, const std::string& group_key,
                                            const google::protobuf::Struct& properties,
                                            const CallContext& context) const;

  // UpdateProperties sets each property of `set` (update_property, sorted
  // by key) then removes each of `unset` (delete_property, in order), one
  // PostHog call each; at most kMaxPersonPropertyChanges changes in all,
  // else INVALID_ARGUMENT and nothing is sent. Not atomic: the first failure
  // stops the update, keeping its code and details, and its message names
  // the changes applied before it and the first not applied.
  absl::Status UpdateProperties(int64_t group_type_index, const std::string& group_key,
                                const google::protobuf::Struct& set,
                                const std::vector<std::string>& unset,
                                const CallContext& context) const;

 private:
  // One request, paced.
  absl::StatusOr<nlohmann::json> Call(const PostHogRequest& request,
                                      const CallContext& context) const;

  const PostHogClient* client_;
  RequestPacer* pacer_;
};

}  // namespace posthog_gateway

#endif  // SERVER_GROUPS_GROUPS_H_
