#ifndef SERVER_FLAGS_FLAG_JSON_H_
#define SERVER_FLAGS_FLAG_JSON_H_

// Conversions between PostHog's feature flag JSON (the REST resource of
// `/api/projects/:id/feature_flags/`) and posthog.v1.Flag. The common parts
// are typed (filters, conditions, property filters, variants, payloads); every
// other field, at every level, goes to the `extra` Struct beside them and
// comes back unchanged, so a flag survives JSON → Flag → JSON intact.
//
// Payload values are kept exactly as PostHog stores them (usually a string
// holding JSON). Pure functions; thread-safe.

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.pb.h"

namespace posthog_gateway::flags {

// FlagFromJson converts PostHog's flag object. INVALID_ARGUMENT (naming the
// field) when it is not an object or a typed field has the wrong type.
absl::StatusOr<posthog::v1::Flag> FlagFromJson(const nlohmann::json& json);

// JsonFromFlag converts back: `extra` first, the typed fields over it. Ids,
// version and times are included when set (callers drop what PostHog must
// not receive).
nlohmann::json JsonFromFlag(const posthog::v1::Flag& flag);

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_FLAG_JSON_H_
