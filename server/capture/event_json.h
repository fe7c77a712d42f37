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

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "posthog/v1/capture.pb.h"
#include "server/common/request_limits.h"

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

// GeoipDisableFor is the `$geoip_disable` the gateway sets on an event
// (server/capture/event_builder.h says when), from the event's `geoip` field,
// whether its properties hold `$geoip_disable` (`caller_set`) and a non-empty
// string `$ip` (`caller_ip`), and the project's default: nullopt when it
// leaves the event's properties as they are.
std::optional<bool> GeoipDisableFor(int geoip_mode, bool caller_set, bool caller_ip,
                                    bool project_disable_geoip);

// The wire path. Capture's stream writes each event's JSON straight from the
// bytes of its posthog.v1.Event, without parsing the request into messages
// (a message of hundreds of events was thousands of small objects: Structs,
// map entries, strings, each read, hashed and copied once more to write the
// JSON). It takes only what it fully understands and declines the rest, so
// that protobuf's parser and EventJson, the reference, decide every unusual
// case: a field that is not the Event's, a singular field or map key that
// appears twice (protobuf merges or keeps the last), a wire type other than
// the field's, a string that either protobuf's or EventJson's UTF-8 check
// refuses, nesting near protobuf's recursion limit or at the depth limit, a
// caller's property that a member of the gateway's replaces. What it accepts
// it writes byte for byte as EventJson writes the parsed event
// (tests/server/event_json_test.cc holds them side by side).

// WireEvent is one posthog.v1.Event decoded only as far as its own fields;
// the views point into the event's bytes, the Structs stay encoded.
struct WireEvent {
  absl::string_view event;
  absl::string_view distinct_id;
  absl::string_view uuid;
  absl::string_view properties;
  absl::string_view set;
  absl::string_view set_once;
  // The `groups` map's entries, encoded, in wire order.
  absl::InlinedVector<absl::string_view, 4> groups;
  bool has_set = false;
  bool has_set_once = false;
  bool has_timestamp = false;
  int64_t timestamp_seconds = 0;
  int32_t timestamp_nanos = 0;
  bool personless = false;
  bool historical_migration = false;
  int32_t geoip = 0;
};

// ScanWireEvent decodes `bytes`' top-level fields into `event`; false when
// it declines them (above).
bool ScanWireEvent(absl::string_view bytes, WireEvent* event);

// WireCaptureRequest is one capture request decoded only as far as its own
// fields; the views point into the message's bytes. posthog.v1's
// CaptureEventRequest, BatchCaptureEventsRequest and
// StreamCaptureEventsRequest share their fields' numbers and wire types
// (project 1, event or events 2, ack_mode 3), so one scan reads all three.
struct WireCaptureRequest {
  absl::string_view project;
  int32_t ack_mode = 0;
  // Each an Event's bytes, in wire order. CaptureEventRequest's `event` is
  // singular: protobuf merges its occurrences into one event, so a caller
  // scanning one takes exactly one and declines any other count.
  std::vector<absl::string_view> events;
};

// ScanCaptureRequest decodes the request's own fields (project 1, events 2,
// ack_mode 3) into `request`, reusing its capacity; false when it leaves the
// bytes to protobuf's parser: a field that is not the request's, a singular
// one twice, a wire type other than the field's, a project that is not
// valid UTF-8, more than `max_events` events. (Capture's stream reads each
// message this way, and unary CaptureEvent and BatchCaptureEvents their
// request; the events are then ScanWireEvent's.)
//
// The bound keeps `request`'s list (whose capacity is reused, and kept for
// a thread's life by callers that hold one per thread) at what a request may
// hold: a message of empty events is two bytes each on the wire and sixteen
// in the list, so an unbounded scan of a 4 MiB message held 32 MiB. The
// default is kMaxCaptureEventsPerMessage: a request with more is refused by
// the parsed path anyway.
bool ScanCaptureRequest(absl::string_view bytes, WireCaptureRequest* request,
                        size_t max_events = static_cast<size_t>(kMaxCaptureEventsPerMessage));

// ScanCaptureEventRequest is ScanCaptureRequest for a CaptureEventRequest:
// false also unless its `event` appears exactly once (absent, protobuf gives
// an empty event; twice, the two merged).
bool ScanCaptureEventRequest(absl::string_view bytes, WireCaptureRequest* request);

// What WireEventJson adds to an event besides its own fields.
struct WireEventJsonOptions {
  absl::string_view uuid;
  // Already formatted (FormatEventTime).
  absl::string_view timestamp;
  absl::string_view lib;
  absl::string_view lib_version;
  // ProjectConfig::disable_geoip: `$geoip_disable` follows GeoipDisableFor.
  bool project_disable_geoip = true;
  // EventLimits::max_properties_depth: properties, set or set_once nested
  // this deep or deeper are declined (Build decides at the limit).
  int max_depth = 32;
};

// WireEventJson writes `event`'s JSON object, as EventJson would, into `out`
// (replacing what it held); false, with `out` holding anything, when it
// declines the event (above).
bool WireEventJson(const WireEvent& event, const WireEventJsonOptions& options, std::string* out);

// AppendJsonString appends `text` as a JSON string literal (with its
// quotes), escaped as above; false (and `out` partly written) when `text` is
// not valid UTF-8.
bool AppendJsonString(absl::string_view text, std::string* out);

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_EVENT_JSON_H_
