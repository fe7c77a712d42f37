#include "server/capture/event_builder.h"

#include <optional>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/capture/event_json.h"

namespace posthog_gateway {
namespace {

// Depth of a Value: scalars are 0, an object or list one more than its
// deepest member.
int ValueDepth(const google::protobuf::Value& value, int limit);

int StructDepth(const google::protobuf::Struct& value, int limit) {
  int deepest = 0;
  for (const auto& [key, member] : value.fields()) {
    if (deepest > limit) break;
    deepest = std::max(deepest, ValueDepth(member, limit));
  }
  return deepest + 1;
}

int ValueDepth(const google::protobuf::Value& value, int limit) {
  if (limit < 0) return 1;
  switch (value.kind_case()) {
    case google::protobuf::Value::kStructValue:
      return StructDepth(value.struct_value(), limit - 1);
    case google::protobuf::Value::kListValue: {
      int deepest = 0;
      for (const auto& item : value.list_value().values()) {
        deepest = std::max(deepest, ValueDepth(item, limit - 1));
      }
      return deepest + 1;
    }
    default:
      return 0;
  }
}

std::string Path(absl::string_view prefix, absl::string_view name) {
  return prefix.empty() ? std::string(name) : absl::StrCat(prefix, ".", name);
}

// Counts UTF-8 code points; PostHog's 200 limit is in characters.
int64_t Utf8Length(absl::string_view text) {
  int64_t length = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++length;
  }
  return length;
}

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!absl::ascii_isxdigit(c)) {
      return false;
    }
  }
  return true;
}

google::protobuf::Value StringValue(const std::string& text) {
  google::protobuf::Value value;
  value.set_string_value(text);
  return value;
}

}  // namespace

std::optional<bool> GeoipDisable(const posthog::v1::Event& event, bool disable_geoip) {
  const auto& fields = event.properties().fields();
  auto ip = fields.find("$ip");
  return GeoipDisableFor(event.geoip(), fields.count("$geoip_disable") > 0,
                         ip != fields.end() &&
                             ip->second.kind_case() == google::protobuf::Value::kStringValue &&
                             !ip->second.string_value().empty(),
                         disable_geoip);
}

std::string FormatEventTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

EventBuilder::EventBuilder(EventLimits limits, std::string lib_version, Clock* clock, Random random)
    : limits_(limits),
      lib_version_(std::move(lib_version)),
      clock_(clock),
      random_(std::move(random)) {}

std::string EventBuilder::NewUuid(absl::Time now) const {
  std::string uuid(36, '-');
  WriteUuid(now, uuid.data());
  return uuid;
}

void EventBuilder::WriteUuid(absl::Time now, char* uuid) const {
  const uint64_t millis = static_cast<uint64_t>(absl::ToUnixMillis(now));
  const uint64_t a = random_();
  const uint64_t b = random_();
  // 48 bits of milliseconds, version 7, 12 random bits; variant 0b10, 62
  // random bits.
  const uint64_t high = (millis << 16) | 0x7000 | (a & 0x0FFF);
  const uint64_t low = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  // xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, lowercase: written by hand, as
  // every event gets one (absl::StrFormat cost more than the JSON).
  static constexpr char kHex[] = "0123456789abcdef";
  int bit = 64;
  for (int i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      uuid[i] = '-';
      continue;
    }
    const uint64_t word = i < 19 ? high : low;
    if (i == 19) bit = 64;
    bit -= 4;
    uuid[i] = kHex[(word >> bit) & 0xF];
  }
}

std::vector<FieldViolation> EventBuilder::Validate(const posthog::v1::Event& event,
                                                   absl::string_view path, absl::Time now) const {
  std::vector<FieldViolation> violations;
  if (event.event().empty()) {
    violations.push_back({Path(path, "event"), "must not be empty"});
  }
  if (event.distinct_id().empty()) {
    violations.push_back({Path(path, "distinct_id"), "must not be empty"});
  } else if (Utf8Length(event.distinct_id()) > limits_.max_distinct_id_chars) {
    violations.push_back(
        {Path(path, "distinct_id"),
         absl::StrCat("must be at most ", limits_.max_distinct_id_chars, " characters")});
  }
  if (event.has_timestamp()) {
    const absl::Time time = absl::FromUnixSeconds(event.timestamp().seconds()) +
                            absl::Nanoseconds(event.timestamp().nanos());
    if (time < limits_.earliest_timestamp || time > now + limits_.max_future) {
      violations.push_back(
          {Path(path, "timestamp"),
           absl::StrCat("must be between ", FormatEventTime(limits_.earliest_timestamp),
                        " and one day after the gateway's clock")});
    }
  }
  if (!posthog::v1::GeoipMode_IsValid(event.geoip())) {
    violations.push_back({Path(path, "geoip"), "must be a GeoipMode value"});
  }
  if (!event.uuid().empty() && !IsUuid(event.uuid())) {
    violations.push_back({Path(path, "uuid"), "must be a UUID"});
  }
  const int limit = static_cast<int>(limits_.max_properties_depth);
  const std::pair<const char*, const google::protobuf::Struct*> structs[] = {
      {"properties", &event.properties()}, {"set", &event.set()}, {"set_once", &event.set_once()}};
  for (const auto& [name, value] : structs) {
    if (StructDepth(*value, limit) > limit) {
      violations.push_back(
          {Path(path, name), absl::StrCat("must not nest deeper than ", limit, " levels")});
    }
  }
  return violations;
}

absl::StatusOr<std::vector<BuiltEvent>> EventBuilder::Build(
    const std::vector<const posthog::v1::Event*>& events, absl::string_view field, bool indexed,
    bool disable_geoip) const {
  const absl::Time now = clock_->Now();
  // Formatted once: every event without a timestamp of its own shares it.
  const std::string now_text = FormatEventTime(now);
  std::vector<FieldViolation> violations;
  std::vector<BuiltEvent> built;
  built.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const posthog::v1::Event& event = *events[i];
    const std::string path = indexed ? absl::StrCat(field, "[", i, "]") : std::string(field);
    std::vector<FieldViolation> problems = Validate(event, path, now);
    if (!problems.empty()) {
      violations.insert(violations.end(), problems.begin(), problems.end());
      continue;
    }
    BuiltEvent out;
    out.uuid = event.uuid().empty() ? NewUuid(now) : absl::AsciiStrToLower(event.uuid());
    const absl::Time timestamp = event.has_timestamp()
                                     ? absl::FromUnixSeconds(event.timestamp().seconds()) +
                                           absl::Nanoseconds(event.timestamp().nanos())
                                     : now;
    const std::string own_time = event.has_timestamp() ? FormatEventTime(timestamp) : "";
    absl::StatusOr<std::string> json =
        EventJson(event, {out.uuid, event.has_timestamp() ? own_time : now_text, kCaptureLib,
                          lib_version_, GeoipDisable(event, disable_geoip)});
    if (!json.ok()) {
      violations.push_back({Path(path, "properties"), std::string(json.status().message())});
      continue;
    }
    out.json = *std::move(json);
    out.historical_migration = event.historical_migration();
    if (static_cast<int64_t>(out.json.size()) > limits_.max_event_bytes) {
      violations.push_back(
          {Path(path, "properties"),
           absl::StrCat("the event is ", out.json.size(), " bytes of JSON; at most ",
                        limits_.max_event_bytes, " are accepted")});
      continue;
    }
    built.push_back(std::move(out));
  }
  if (!violations.empty()) {
    return InvalidArgumentWithViolations(
        events.size() == 1 ? "the event is invalid"
                           : absl::StrCat(violations.size(), " problems in the events"),
        violations);
  }
  return built;
}

bool EventBuilder::BuildWireEach(
    const std::vector<absl::string_view>& events, bool disable_geoip,
    absl::FunctionRef<void(const char* uuid, absl::string_view json, bool historical_migration)>
        take) const {
  const absl::Time now = clock_->Now();
  const std::string now_text = FormatEventTime(now);
  // The JSON is written into a per-thread buffer that keeps its capacity;
  // `take` copies it where it is kept.
  thread_local std::string json;
  bool ok = true;
  for (absl::string_view bytes : events) {
    WireEvent event;
    if (!ScanWireEvent(bytes, &event)) {
      ok = false;
      break;
    }
    // Validate's checks: any problem is Build's to report.
    const absl::Time timestamp =
        absl::FromUnixSeconds(event.timestamp_seconds) + absl::Nanoseconds(event.timestamp_nanos);
    if (event.event.empty() || event.distinct_id.empty() ||
        Utf8Length(event.distinct_id) > limits_.max_distinct_id_chars ||
        (event.has_timestamp &&
         (timestamp < limits_.earliest_timestamp || timestamp > now + limits_.max_future)) ||
        !posthog::v1::GeoipMode_IsValid(event.geoip) ||
        (!event.uuid.empty() && !IsUuid(event.uuid))) {
      ok = false;
      break;
    }
    char uuid[36];
    if (event.uuid.empty()) {
      WriteUuid(now, uuid);
    } else {
      for (int i = 0; i < 36; ++i) uuid[i] = absl::ascii_tolower(event.uuid[i]);
    }
    const std::string own_time = event.has_timestamp ? FormatEventTime(timestamp) : "";
    WireEventJsonOptions options;
    options.uuid = absl::string_view(uuid, sizeof(uuid));
    options.timestamp = event.has_timestamp ? own_time : now_text;
    options.lib = kCaptureLib;
    options.lib_version = lib_version_;
    options.project_disable_geoip = disable_geoip;
    options.max_depth = static_cast<int>(limits_.max_properties_depth);
    if (!WireEventJson(event, options, &json) ||
        static_cast<int64_t>(json.size()) > limits_.max_event_bytes) {
      ok = false;
      break;
    }
    take(uuid, json, event.historical_migration);
  }
  // One unusually large event must not pin its size for the thread's life.
  if (json.capacity() > (64 << 10)) std::string().swap(json);
  return ok;
}

std::optional<std::vector<BuiltEvent>> EventBuilder::BuildWire(
    const std::vector<absl::string_view>& events, bool disable_geoip, bool with_uuids) const {
  std::vector<BuiltEvent> built;
  built.reserve(events.size());
  const bool ok =
      BuildWireEach(events, disable_geoip,
                    [&](const char* uuid, absl::string_view json, bool historical_migration) {
                      BuiltEvent out;
                      if (with_uuids) out.uuid.assign(uuid, 36);
                      out.json.assign(json.data(), json.size());  // At its exact size.
                      out.historical_migration = historical_migration;
                      built.push_back(std::move(out));
                    });
  if (!ok) return std::nullopt;
  return built;
}

bool EventBuilder::BuildWireRecords(const std::vector<absl::string_view>& events,
                                    bool disable_geoip, absl::string_view project,
                                    RecordBlock* block, std::vector<std::string>* uuids) const {
  // An event's JSON is about its wire bytes plus what the gateway adds
  // (uuid, timestamp, $lib...): the block seldom grows, nor holds much idle.
  size_t wire_bytes = 0;
  for (absl::string_view bytes : events) wire_bytes += bytes.size();
  block->Reserve(block->bytes().size() + wire_bytes +
                     events.size() * (256 + RecordBlock::RecordBytes(project, "")),
                 block->size() + events.size());
  if (uuids != nullptr) uuids->reserve(events.size());
  const bool ok =
      BuildWireEach(events, disable_geoip,
                    [&](const char* uuid, absl::string_view json, bool historical_migration) {
                      block->Add(project, historical_migration, json);
                      if (uuids != nullptr) uuids->emplace_back(uuid, 36);
                    });
  // The estimate can be far off: wire bytes that are much larger than their
  // JSON (a list of numbers: 11 bytes each on the wire, 2 in JSON) leave the
  // block holding several times its records, which the delivery queue's
  // memory budget does not see (it counts the JSON), so a caller could make
  // it hold several times its budget. Trimmed past half again its records
  // (ordinary messages stay well below: no copy).
  const size_t used = block->bytes().size();
  if (ok && block->allocated_bytes() > used + used / 2 + 512) block->ShrinkToFit();
  return ok;
}

posthog::v1::Event IdentifyEvent(const posthog::v1::IdentifyRequest& request) {
  posthog::v1::Event event;
  event.set_geoip(request.geoip());
  event.set_event("$identify");
  event.set_distinct_id(request.distinct_id());
  auto& properties = *event.mutable_properties()->mutable_fields();
  if (request.has_set()) {
    *properties["$set"].mutable_struct_value() = request.set();
  }
  if (request.has_set_once()) {
    *properties["$set_once"].mutable_struct_value() = request.set_once();
  }
  if (!request.anonymous_distinct_id().empty()) {
    properties["$anon_distinct_id"] = StringValue(request.anonymous_distinct_id());
  }
  return event;
}

posthog::v1::Event AliasEvent(const posthog::v1::AliasRequest& request) {
  posthog::v1::Event event;
  event.set_geoip(request.geoip());
  event.set_event("$create_alias");
  event.set_distinct_id(request.distinct_id());
  auto& properties = *event.mutable_properties()->mutable_fields();
  properties["distinct_id"] = StringValue(request.distinct_id());
  properties["alias"] = StringValue(request.alias());
  return event;
}

posthog::v1::Event GroupIdentifyEvent(const posthog::v1::GroupIdentifyRequest& request) {
  posthog::v1::Event event;
  event.set_geoip(request.geoip());
  event.set_event("$groupidentify");
  event.set_distinct_id(request.distinct_id().empty()
                            ? absl::StrCat("$", request.group_type(), "_", request.group_key())
                            : request.distinct_id());
  auto& properties = *event.mutable_properties()->mutable_fields();
  properties["$group_type"] = StringValue(request.group_type());
  properties["$group_key"] = StringValue(request.group_key());
  *properties["$group_set"].mutable_struct_value() = request.properties();
  return event;
}

posthog::v1::Event SetPersonPropertiesEvent(
    const posthog::v1::SetPersonPropertiesRequest& request) {
  posthog::v1::Event event;
  event.set_geoip(request.geoip());
  event.set_event("$set");
  event.set_distinct_id(request.distinct_id());
  auto& properties = *event.mutable_properties()->mutable_fields();
  if (request.has_set()) {
    *properties["$set"].mutable_struct_value() = request.set();
  }
  if (request.has_set_once()) {
    *properties["$set_once"].mutable_struct_value() = request.set_once();
  }
  if (!request.unset().empty()) {
    auto* list = properties["$unset"].mutable_list_value();
    for (const std::string& name : request.unset()) *list->add_values() = StringValue(name);
  }
  return event;
}

}  // namespace posthog_gateway
