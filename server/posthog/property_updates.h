#ifndef SERVER_POSTHOG_PROPERTY_UPDATES_H_
#define SERVER_POSTHOG_PROPERTY_UPDATES_H_

// ApplyPropertyUpdates sends a set/unset of properties the way PostHog's
// person and group endpoints take it: one POST per change, `{key, value}`
// to `update_path` for each set (sorted by key, so that PostHog sees the
// same order for the same request), then `{"$unset": key}` to
// `delete_path` for each unset, in the caller's order, with the personal
// key. It stops at the first failure (or when the caller went away) and
// then says exactly which changes were applied before it, keeping the
// failure's code and details (RetryInfo, ...); a first change that fails
// returns that failure as is. `send` makes one request (paced by the
// caller's domain class).
//
// Shared by server/persons and server/groups; pure apart from `send`.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "server/posthog/call_context.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway {

absl::Status ApplyPropertyUpdates(
    const std::string& update_path, const std::string& delete_path,
    const google::protobuf::Struct& set, const std::vector<std::string>& unset,
    const CallContext& context,
    const std::function<absl::StatusOr<nlohmann::json>(const PostHogRequest&)>& send);

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_PROPERTY_UPDATES_H_
