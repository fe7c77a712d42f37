#ifndef SERVER_CAPTURE_EVENT_JSON_H_
#define SERVER_CAPTURE_EVENT_JSON_H_

// EventJson writes the JSON object of one capture event straight from the
// API's protobuf into a string, in one pass: no intermediate JSON tree.
// Capture builds one per event, so this is on the hot path of every
// CaptureEvent and StreamCaptureEvents call.
//
// The bytes are exactly those of building the object with nlohmann::json
// (server/posthog/json_struct.h's JsonFromStruct for the Structs) and calling
// dump(): keys sorted bytewise at every level, compact, strings escaped as
// nlohmann does (", \, \b, \f, \n, \r, \t, other control characters as
// \u00xx, everything else verbatim), whole numbers up to 2^53 as integers,
// other finite numbers as nlohmann prints them, NaN and infinities as null.
// tests/server/event_json_test.cc holds the two side by side.
//
// Thread-safe (pure functions).

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "posthog/v1/capture.pb.h"

namespace posthog_gateway {

// What EventJson adds to an event besides its own fields.
struct EventJsonExtras {
  absl::string_view uuid;
  // Already formatted (FormatEventTime).
  absl::string_view timestamp;
  absl::string_view lib;
  absl::string_view lib_version;
  // `$geoip_disable` as the gateway sets it, replacing the caller's; absent
  // (the caller's property, if any, kept) when not set.
  std::optional<bool> geoip_disable;
};

// EventJson returns the event object PostHog's `/batch/` takes:
// {"distinct_id", "event", "properties": {<properties>, "$lib",
// "$lib_version", "$is_server": true, "$set", "$set_once", "$groups",
// "$process_person_profile", "$geoip_disable"}, "timestamp", "uuid"}. INVALID_ARGUMENT when a
// string of the event is not valid UTF-8 (protobuf's parser refuses those, so only an event built
// in-process can have one).
absl::StatusOr<std::string> EventJson(const posthog::v1::Event& event,
                                      const EventJsonExtras& extras);

// AppendJsonString appends `text` as a JSON string literal (with its
// quotes), escaped as above; false (and `out` partly written) when `text` is
// not valid UTF-8.
bool AppendJsonString(absl::string_view text, std::string* out);

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_EVENT_JSON_H_
