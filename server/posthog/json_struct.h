#ifndef SERVER_POSTHOG_JSON_STRUCT_H_
#define SERVER_POSTHOG_JSON_STRUCT_H_

// Conversions between PostHog's free-form JSON (nlohmann::json) and the
// google.protobuf.Struct / Value the API carries it in. JSON numbers become
// doubles, as Struct has no integers; integral doubles convert back to JSON
// integers so that `{"count": 3}` round-trips as `3`, not `3.0`.

#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace posthog_gateway {

google::protobuf::Value ValueFromJson(const nlohmann::json& json);

// StructFromJson converts a JSON object; anything else gives an empty Struct.
google::protobuf::Struct StructFromJson(const nlohmann::json& json);

nlohmann::json JsonFromValue(const google::protobuf::Value& value);
nlohmann::json JsonFromStruct(const google::protobuf::Struct& value);

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_JSON_STRUCT_H_
