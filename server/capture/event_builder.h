#ifndef SERVER_CAPTURE_EVENT_BUILDER_H_
#define SERVER_CAPTURE_EVENT_BUILDER_H_

// EventBuilder validates API events and turns them into the JSON objects
// PostHog's SDKs put in a `/batch/` body (docs/posthog-api.md §1.2, §1.8):
//
//   {"event": ..., "distinct_id": ..., "properties": {..., "$lib": ...,
//    "$lib_version": ..., "$is_server": true, "$set": {...},
//    "$set_once": {...}, "$groups": {...}, "$process_person_profile": false,
//    "$geoip_disable": true},
//    "timestamp": "2026-01-02T03:04:05.000Z", "uuid": "<UUIDv7>"}
//
// GeoIP follows PostHog's server SDKs: `$geoip_disable: true` unless the
// event asks for GeoIP (GEOIP_MODE_ENABLED), the project's default allows it,
// the event carries `$ip` (the end user's address, which PostHog geolocates)
// or the caller set `$geoip_disable` in the properties itself (kept as sent).
// GEOIP_MODE_DISABLED always sets it.
//
// The uuid and timestamp are fixed here, once, before the event is spooled,
// so that every retry resends the same ones and PostHog deduplicates.
//
// The convention RPCs (identify, alias, group identify, set person
// properties) become ordinary events through the *Event functions below.
//
// Thread-safe if the injected clock and random source are.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "posthog/v1/capture.pb.h"
#include "server/capture/record_block.h"
#include "server/common/clock.h"
#include "server/common/error_details.h"

namespace posthog_gateway {

// What EventBuilder refuses.
struct EventLimits {
  // Largest serialized event, in bytes.
  int64_t max_event_bytes = 900 * 1024;
  // Longest distinct_id, in characters (PostHog's limit).
  int64_t max_distinct_id_chars = 200;
  // Deepest nesting of objects and lists in properties, $set and $set_once.
  int64_t max_properties_depth = 32;
  // Timestamps before this are refused.
  absl::Time earliest_timestamp = absl::FromUnixSeconds(946684800);  // 2000-01-01.
  // Timestamps further than this past the gateway's clock are refused.
  absl::Duration max_future = absl::Hours(24);
};

// One event ready for the spool.
struct BuiltEvent {
  std::string uuid;
  // The event object, compact JSON.
  std::string json;
  // Whether it goes with `historical_migration: true`.
  bool historical_migration = false;
};

class EventBuilder final {
 public:
  using Random = std::function<uint64_t()>;

  // `lib_version` becomes `$lib_version`; `clock` and `random` make
  // timestamps and UUIDv7s (tests inject fixed ones). Borrows `clock`.
  EventBuilder(EventLimits limits, std::string lib_version, Clock* clock, Random random);

  EventBuilder(const EventBuilder&) = delete;
  EventBuilder& operator=(const EventBuilder&) = delete;

  // Build validates every event and builds them all, or builds none: a bad
  // event is INVALID_ARGUMENT with one BadRequest violation per problem,
  // named `<field>[i].<name>` (or `<field>.<name>` when `indexed` is false).
  // `disable_geoip` is the project's default for events that leave `geoip`
  // unspecified (ProjectConfig::disable_geoip).
  absl::StatusOr<std::vector<BuiltEvent>> Build(
      const std::vector<const posthog::v1::Event*>& events, absl::string_view field, bool indexed,
      bool disable_geoip) const;

  // BuildWire is Build for events still in their wire form, each the bytes
  // of one posthog.v1.Event, indexed: their JSON is written straight from the
  // bytes (server/capture/event_json.h, "The wire path"). It returns nullopt,
  // having built nothing, when it declines any of them: a violation, or
  // anything that path leaves to protobuf's parser and EventJson; the caller
  // then parses the events and calls Build, which decides. The events it
  // returns are byte for byte what Build returns for the parsed events (the
  // clock and randomness aside); their uuids only `with_uuids`.
  std::optional<std::vector<BuiltEvent>> BuildWire(const std::vector<absl::string_view>& events,
                                                   bool disable_geoip, bool with_uuids) const;

  // BuildWireRecords is BuildWire writing each event straight into `block`
  // as a spool record for `project` (record_block.h), with no string per
  // event, and its uuid into `uuids` when not null; false when BuildWire
  // would return nullopt (what it wrote is then to be discarded). The JSON
  // is BuildWire's.
  bool BuildWireRecords(const std::vector<absl::string_view>& events, bool disable_geoip,
                        absl::string_view project, RecordBlock* block,
                        std::vector<std::string>* uuids) const;

  // Validate returns the problems of one event, fields prefixed by `path`.
  std::vector<FieldViolation> Validate(const posthog::v1::Event& event, absl::string_view path,
                                       absl::Time now) const;

  // NewUuid returns a UUIDv7 (RFC 9562) for `now`.
  std::string NewUuid(absl::Time now) const;

 private:
  // BuildWireEach builds `events` as BuildWire does, handing each one's uuid
  // (36 characters), JSON and flag to `take` (views valid during the call);
  // false, at the first event BuildWire declines, when it declines any.
  bool BuildWireEach(
      const std::vector<absl::string_view>& events, bool disable_geoip,
      absl::FunctionRef<void(const char* uuid, absl::string_view json, bool historical_migration)>
          take) const;

  // WriteUuid writes NewUuid's 36 characters to `uuid`.
  void WriteUuid(absl::Time now, char* uuid) const;

  EventLimits limits_;
  std::string lib_version_;
  Clock* clock_;
  Random random_;
};

// The library name the gateway reports as `$lib`.
inline constexpr absl::string_view kCaptureLib = "posthog-grpc-gateway";

// GeoipDisable is the `$geoip_disable` the gateway sets on `event` (see
// above): nullopt when it leaves the event's properties as they are.
std::optional<bool> GeoipDisable(const posthog::v1::Event& event, bool disable_geoip);

// FormatEventTime formats `time` as PostHog's SDKs do: ISO 8601 in UTC with
// milliseconds, e.g. `2026-01-02T03:04:05.000Z`.
std::string FormatEventTime(absl::Time time);

// IdentifyEvent is `$identify` with `$set`, `$set_once` and
// `$anon_distinct_id` in its properties (posthog-node's shape).
posthog::v1::Event IdentifyEvent(const posthog::v1::IdentifyRequest& request);

// AliasEvent is `$create_alias`: distinct_id X, properties
// {"distinct_id": X, "alias": Y}.
posthog::v1::Event AliasEvent(const posthog::v1::AliasRequest& request);

// GroupIdentifyEvent is `$groupidentify` with `$group_type`, `$group_key`,
// `$group_set`, sent as `$<type>_<key>` unless a distinct_id is given.
posthog::v1::Event GroupIdentifyEvent(const posthog::v1::GroupIdentifyRequest& request);

// SetPersonPropertiesEvent is `$set` with `$set`, `$set_once` and `$unset`
// in its properties.
posthog::v1::Event SetPersonPropertiesEvent(const posthog::v1::SetPersonPropertiesRequest& request);

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_EVENT_BUILDER_H_
