#include "server/capture/event_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/common.h"
#include "nlohmann/json.hpp"
#include "server/capture/wire_reader.h"

namespace posthog_gateway {
namespace {

// The length of the well-formed UTF-8 sequence starting at `text[i]`
// (Unicode Table 3-7: no overlong forms, no surrogates, nothing past
// U+10FFFF), or 0.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  const size_t left = text.size() - i;
  auto continuation = [&](size_t k, unsigned char low = 0x80, unsigned char high = 0xBF) {
    return k < text.size() && byte(k) >= low && byte(k) <= high;
  };
  if (lead >= 0xC2 && lead <= 0xDF) return left >= 2 && continuation(i + 1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    const unsigned char low = lead == 0xE0 ? 0xA0 : 0x80;
    const unsigned char high = lead == 0xED ? 0x9F : 0xBF;
    return left >= 3 && continuation(i + 1, low, high) && continuation(i + 2) ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    const unsigned char low = lead == 0xF0 ? 0x90 : 0x80;
    const unsigned char high = lead == 0xF4 ? 0x8F : 0xBF;
    return left >= 4 && continuation(i + 1, low, high) && continuation(i + 2) && continuation(i + 3)
               ? 4
               : 0;
  }
  return 0;
}

void AppendJsonNumber(double number, std::string* out) {
  // As JsonFromValue: JSON has no NaN or infinity; whole numbers that a
  // double holds exactly are integers.
  if (!std::isfinite(number)) {
    out->append("null");
    return;
  }
  constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53
  if (std::trunc(number) == number && std::fabs(number) <= kMaxExactInteger) {
    absl::StrAppend(out, static_cast<int64_t>(number));
    return;
  }
  out->append(nlohmann::json(number).dump());
}

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}

  bool ok() const { return ok_; }

  void String(absl::string_view text) { ok_ = AppendJsonString(text, out_) && ok_; }

  void Raw(absl::string_view text) { out_->append(text.data(), text.size()); }

  void Value(const google::protobuf::Value& value) {
    switch (value.kind_case()) {
      case google::protobuf::Value::kNullValue:
      case google::protobuf::Value::KIND_NOT_SET:
        Raw("null");
        return;
      case google::protobuf::Value::kBoolValue:
        Raw(value.bool_value() ? "true" : "false");
        return;
      case google::protobuf::Value::kNumberValue:
        Number(value.number_value());
        return;
      case google::protobuf::Value::kStringValue:
        String(value.string_value());
        return;
      case google::protobuf::Value::kListValue: {
        out_->push_back('[');
        bool first = true;
        for (const google::protobuf::Value& item : value.list_value().values()) {
          if (!first) out_->push_back(',');
          first = false;
          Value(item);
        }
        out_->push_back(']');
        return;
      }
      case google::protobuf::Value::kStructValue:
        Struct(value.struct_value());
        return;
    }
    Raw("null");
  }

  // Writes `value`'s fields, keys sorted. With `event`, also the members the
  // gateway sets (EventMember), which replace fields of the same key.
  void Struct(const google::protobuf::Struct& value, const posthog::v1::Event* event = nullptr,
              const EventJsonExtras* extras = nullptr) {
    // (key, field); a member of the gateway's has no field.
    absl::InlinedVector<std::pair<absl::string_view, const google::protobuf::Value*>, 16> fields;
    absl::InlinedVector<absl::string_view, 8> members;
    if (event != nullptr) {
      members = {"$lib", "$lib_version", "$is_server"};
      if (event->has_set()) members.push_back("$set");
      if (event->has_set_once()) members.push_back("$set_once");
      if (!event->groups().empty()) members.push_back("$groups");
      if (event->personless()) members.push_back("$process_person_profile");
      if (extras->geoip_disable.has_value()) members.push_back("$geoip_disable");
    }
    fields.reserve(value.fields().size() + members.size());
    for (const auto& [key, member] : value.fields()) {
      if (members.empty() || key.empty() || key[0] != '$' ||
          std::find(members.begin(), members.end(), key) == members.end()) {
        fields.emplace_back(key, &member);
      }
    }
    for (absl::string_view member : members) fields.emplace_back(member, nullptr);
    std::sort(fields.begin(), fields.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    out_->push_back('{');
    bool first = true;
    for (const auto& [key, member] : fields) {
      if (!first) out_->push_back(',');
      first = false;
      String(key);
      out_->push_back(':');
      if (member != nullptr) {
        Value(*member);
      } else {
        EventMember(key, *event, *extras);
      }
    }
    out_->push_back('}');
  }

 private:
  // The gateway's members of an event's properties, as EventBuilder always
  // set them.
  void EventMember(absl::string_view key, const posthog::v1::Event& event,
                   const EventJsonExtras& extras) {
    if (key == "$lib") {
      String(extras.lib);
    } else if (key == "$lib_version") {
      String(extras.lib_version);
    } else if (key == "$set") {
      Struct(event.set());
    } else if (key == "$set_once") {
      Struct(event.set_once());
    } else if (key == "$groups") {
      google::protobuf::Struct groups;
      for (const auto& [type, group_key] : event.groups()) {
        (*groups.mutable_fields())[type].set_string_value(group_key);
      }
      Struct(groups);
    } else if (key == "$process_person_profile") {
      Raw("false");
    } else if (key == "$is_server") {
      Raw("true");
    } else if (key == "$geoip_disable") {
      Raw(*extras.geoip_disable ? "true" : "false");
    }
  }

  void Number(double number) { AppendJsonNumber(number, out_); }

  std::string* out_;
  bool ok_ = true;
};

// Bytes copied verbatim without a second look: printable ASCII but the
// quote and the backslash.
constexpr std::array<bool, 256> kPlainAscii = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// Whether the eight bytes at `bytes` are all plain (kPlainAscii): no byte
// below 0x20 or from 0x80, no quote, no backslash. Exact: the zero-byte
// tests flag a word if and only if some byte matches.
inline bool PlainAsciiWord(const char* bytes) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t word;
  std::memcpy(&word, bytes, sizeof(word));
  const auto has_zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (word - kOnes * 0x20) & ~word & kHigh;
  return (below_space | (word & kHigh) | has_zero_byte(word ^ (kOnes * '"')) |
          has_zero_byte(word ^ (kOnes * '\\'))) == 0;
}

}  // namespace

bool AppendJsonString(absl::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // Start of the bytes copied verbatim.
  size_t i = 0;
  while (i < text.size()) {
    // Runs of ordinary printable ASCII are copied in one append, found eight
    // bytes at a time, then byte by byte up to the first that is not.
    while (i + 8 <= text.size() && PlainAsciiWord(text.data() + i)) i += 8;
    while (i < text.size() && kPlainAscii[static_cast<unsigned char>(text[i])]) ++i;
    if (i == text.size()) break;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(text, i);
      if (length == 0) return false;
      i += length;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out->append(text.data() + run, i - run);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(escaped, sizeof(escaped));
      }
    }
    run = ++i;
  }
  out->append(text.data() + run, text.size() - run);
  out->push_back('"');
  return true;
}

absl::StatusOr<std::string> EventJson(const posthog::v1::Event& event,
                                      const EventJsonExtras& extras) {
  // Written into a per-thread buffer that keeps its capacity, then copied
  // out at its exact size: sizing a fresh string from the event's
  // ByteSizeLong walked every Struct once more (5 % of the gateway's
  // streaming CPU) and left each event's JSON holding about twice its size
  // while it waits for delivery.
  thread_local std::string out;
  out.clear();
  Writer writer(&out);
  // Top-level keys in sorted order.
  writer.Raw("{\"distinct_id\":");
  writer.String(event.distinct_id());
  writer.Raw(",\"event\":");
  writer.String(event.event());
  writer.Raw(",\"properties\":");
  writer.Struct(event.properties(), &event, &extras);
  writer.Raw(",\"timestamp\":");
  writer.String(extras.timestamp);
  writer.Raw(",\"uuid\":");
  writer.String(extras.uuid);
  writer.Raw("}");
  if (!writer.ok()) {
    return absl::InvalidArgumentError("the event holds a string that is not valid UTF-8");
  }
  std::string json(out);
  // One unusually large event must not pin its size for the thread's life.
  if (out.capacity() > (64 << 10)) std::string().swap(out);
  return json;
}

std::optional<bool> GeoipDisableFor(int geoip_mode, bool caller_set, bool caller_ip,
                                    bool project_disable_geoip) {
  switch (geoip_mode) {
    case posthog::v1::GEOIP_MODE_DISABLED:
      return true;
    case posthog::v1::GEOIP_MODE_ENABLED:
      // The field wins over a `$geoip_disable` of the caller's properties.
      return caller_set ? std::optional<bool>(false) : std::nullopt;
    default:
      break;
  }
  if (!project_disable_geoip || caller_set) return std::nullopt;
  // PostHog geolocates `$ip` when the event carries one: the end user's
  // address, which the caller knows and PostHog cannot.
  if (caller_ip) return std::nullopt;
  return true;
}

namespace {

// Messages nested below an Event that the wire path follows: protobuf's
// parser refuses 100 below the request; the margin leaves everything near
// that to it.
constexpr int kMaxWireNesting = 80;

// The gateway's members of an event's properties, sorted bytewise (the
// order the merge in WireWriter::Properties relies on).
enum GatewayKey {
  kGeoipDisable,
  kGroups,
  kIsServer,
  kLib,
  kLibVersion,
  kProcessPersonProfile,
  kSet,
  kSetOnce,
  kMemberCount
};
constexpr absl::string_view kMemberKeys[kMemberCount] = {
    "$geoip_disable",          "$groups", "$is_server", "$lib", "$lib_version",
    "$process_person_profile", "$set",    "$set_once"};

// A string as protobuf's parser takes it and EventJson writes it: false
// when either refuses its UTF-8.
bool AppendWireString(absl::string_view text, std::string* out) {
  return google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                             static_cast<int>(text.size())) &&
         AppendJsonString(text, out);
}

// One map entry (a Struct's field, a `groups` entry): key 1 and value 2,
// each at most once, either may be absent (empty).
bool ScanMapEntry(absl::string_view bytes, absl::string_view* key, absl::string_view* value) {
  WireReader reader(bytes);
  bool has_key = false;
  bool has_value = false;
  while (!reader.done()) {
    uint32_t field;
    int type;
    if (!reader.Next(&field, &type) || type != WireReader::kLengthDelimited) return false;
    if (field == 1 && !has_key) {
      has_key = true;
      if (!reader.Bytes(key)) return false;
    } else if (field == 2 && !has_value) {
      has_value = true;
      if (!reader.Bytes(value)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// (key, encoded value) of a map, sorted by key.
using Entries = absl::InlinedVector<std::pair<absl::string_view, absl::string_view>, 16>;

// A map's entries (field 1 of a Struct, or `groups`' entries), sorted by key;
// false on a malformed entry or a key that appears twice.
bool SortEntries(Entries* entries) {
  std::sort(entries->begin(), entries->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < entries->size(); ++i) {
    if ((*entries)[i - 1].first == (*entries)[i].first) return false;
  }
  return true;
}

bool ScanStruct(absl::string_view bytes, Entries* entries) {
  WireReader reader(bytes);
  while (!reader.done()) {
    uint32_t field;
    int type;
    absl::string_view entry;
    if (!reader.Next(&field, &type) || field != 1 || type != WireReader::kLengthDelimited ||
        !reader.Bytes(&entry)) {
      return false;
    }
    std::pair<absl::string_view, absl::string_view> pair;
    if (!ScanMapEntry(entry, &pair.first, &pair.second)) return false;
    entries->push_back(pair);
  }
  return SortEntries(entries);
}

const std::pair<absl::string_view, absl::string_view>* FindEntry(const Entries& entries,
                                                                 absl::string_view key) {
  auto found =
      std::lower_bound(entries.begin(), entries.end(), key,
                       [](const auto& entry, absl::string_view k) { return entry.first < k; });
  return found != entries.end() && found->first == key ? &*found : nullptr;
}

// Whether an encoded Value is a non-empty string_value and nothing else.
bool IsNonEmptyString(absl::string_view value) {
  WireReader reader(value);
  uint32_t field;
  int type;
  absl::string_view text;
  return reader.Next(&field, &type) && field == 3 && type == WireReader::kLengthDelimited &&
         reader.Bytes(&text) && reader.done() && !text.empty();
}

// Writes encoded Structs, ListValues and Values as Writer writes the parsed
// ones. `nesting` counts messages below the Event; `depth` receives what
// StructDepth / ValueDepth (server/capture/event_builder.cc) count.
class WireWriter {
 public:
  explicit WireWriter(std::string* out) : out_(out) {}

  bool Value(absl::string_view bytes, int nesting, int* depth) {
    *depth = 0;
    if (bytes.empty()) {  // No kind: as KIND_NOT_SET.
      out_->append("null");
      return true;
    }
    if (nesting > kMaxWireNesting) return false;
    WireReader reader(bytes);
    uint32_t field;
    int type;
    if (!reader.Next(&field, &type)) return false;
    uint64_t number;
    absl::string_view inner;
    bool ok = false;
    switch (field) {
      case 1:  // null_value
        ok = type == WireReader::kVarint && reader.Varint(&number);
        if (ok) out_->append("null");
        break;
      case 2:  // number_value
        ok = type == WireReader::kFixed64 && reader.Fixed64(&number);
        if (ok) {
          double value;
          std::memcpy(&value, &number, sizeof(value));
          AppendJsonNumber(value, out_);
        }
        break;
      case 3:  // string_value
        ok = type == WireReader::kLengthDelimited && reader.Bytes(&inner) &&
             AppendWireString(inner, out_);
        break;
      case 4:  // bool_value: protobuf takes any non-zero varint as true.
        ok = type == WireReader::kVarint && reader.Varint(&number);
        if (ok) out_->append(number != 0 ? "true" : "false");
        break;
      case 5:  // struct_value
        ok = type == WireReader::kLengthDelimited && reader.Bytes(&inner) &&
             Struct(inner, nesting + 1, depth);
        break;
      case 6:  // list_value
        ok = type == WireReader::kLengthDelimited && reader.Bytes(&inner) &&
             List(inner, nesting + 1, depth);
        break;
      default:
        return false;
    }
    // A second field would be a second kind (the last wins) or unknown.
    return ok && reader.done();
  }

  // A Struct at `nesting`.
  bool Struct(absl::string_view bytes, int nesting, int* depth) {
    if (nesting > kMaxWireNesting) return false;
    Entries entries;
    if (!ScanStruct(bytes, &entries)) return false;
    out_->push_back('{');
    int deepest = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i != 0) out_->push_back(',');
      if (!Member(entries[i], nesting, &deepest)) return false;
    }
    out_->push_back('}');
    *depth = deepest + 1;
    return true;
  }

  // An event's properties with the gateway's members merged in key order.
  bool Properties(const WireEvent& event, const WireEventJsonOptions& options) {
    Entries entries;
    if (!ScanStruct(event.properties, &entries)) return false;
    const auto* ip = FindEntry(entries, "$ip");
    const std::optional<bool> geoip_disable = GeoipDisableFor(
        event.geoip, FindEntry(entries, "$geoip_disable") != nullptr,
        ip != nullptr && IsNonEmptyString(ip->second), options.project_disable_geoip);
    const bool present[kMemberCount] = {geoip_disable.has_value(),
                                        !event.groups.empty(),
                                        true,
                                        true,
                                        true,
                                        event.personless,
                                        event.has_set,
                                        event.has_set_once};
    out_->push_back('{');
    int deepest = 0;
    size_t i = 0;
    int member = 0;
    bool first = true;
    while (true) {
      while (member < kMemberCount && !present[member]) ++member;
      if (i == entries.size() && member == kMemberCount) break;
      bool take_member = i == entries.size();
      if (!take_member && member < kMemberCount) {
        const int order = entries[i].first.compare(kMemberKeys[member]);
        // A caller's property that a member replaces: EventJson drops it, and
        // its depth still counts in Validate; declined for Build.
        if (order == 0) return false;
        take_member = order > 0;
      }
      if (!first) out_->push_back(',');
      first = false;
      if (!take_member) {
        if (!Member(entries[i++], /*nesting=*/2, &deepest)) return false;
        continue;
      }
      // The keys are plain ASCII: no escaping to look for.
      out_->push_back('"');
      out_->append(kMemberKeys[member].data(), kMemberKeys[member].size());
      out_->append("\":");
      if (!GatewayMember(static_cast<GatewayKey>(member), event, options,
                         geoip_disable.value_or(false))) {
        return false;
      }
      ++member;
    }
    out_->push_back('}');
    return deepest + 1 < options.max_depth;
  }

 private:
  // `"key":value` of a Struct whose own nesting is `nesting` (its entries
  // one below, their values two).
  bool Member(const std::pair<absl::string_view, absl::string_view>& entry, int nesting,
              int* deepest) {
    if (!AppendWireString(entry.first, out_)) return false;
    out_->push_back(':');
    int depth;
    if (!Value(entry.second, nesting + 2, &depth)) return false;
    *deepest = std::max(*deepest, depth);
    return true;
  }

  bool List(absl::string_view bytes, int nesting, int* depth) {
    WireReader reader(bytes);
    out_->push_back('[');
    int deepest = 0;
    bool first = true;
    while (!reader.done()) {
      uint32_t field;
      int type;
      absl::string_view item;
      if (!reader.Next(&field, &type) || field != 1 || type != WireReader::kLengthDelimited ||
          !reader.Bytes(&item)) {
        return false;
      }
      if (!first) out_->push_back(',');
      first = false;
      int item_depth;
      if (!Value(item, nesting + 1, &item_depth)) return false;
      deepest = std::max(deepest, item_depth);
    }
    out_->push_back(']');
    *depth = deepest + 1;
    return true;
  }

  // The value of a gateway's member; `geoip_disable` is read only when that
  // member is present.
  bool GatewayMember(GatewayKey member, const WireEvent& event, const WireEventJsonOptions& options,
                     bool geoip_disable) {
    int depth = 0;
    switch (member) {
      case kGeoipDisable:
        out_->append(geoip_disable ? "true" : "false");
        return true;
      case kGroups:
        return Groups(event);
      case kIsServer:
        out_->append("true");
        return true;
      case kLib:
        return AppendJsonString(options.lib, out_);
      case kLibVersion:
        return AppendJsonString(options.lib_version, out_);
      case kProcessPersonProfile:
        out_->append("false");
        return true;
      case kSet:
        return Struct(event.set, /*nesting=*/2, &depth) && depth < options.max_depth;
      case kSetOnce:
        return Struct(event.set_once, /*nesting=*/2, &depth) && depth < options.max_depth;
      case kMemberCount:
        break;
    }
    return false;
  }

  // `groups` (map<string, string>) as an object of strings, keys sorted.
  bool Groups(const WireEvent& event) {
    Entries entries;
    for (absl::string_view entry : event.groups) {
      std::pair<absl::string_view, absl::string_view> pair;
      if (!ScanMapEntry(entry, &pair.first, &pair.second)) return false;
      entries.push_back(pair);
    }
    if (!SortEntries(&entries)) return false;
    out_->push_back('{');
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i != 0) out_->push_back(',');
      if (!AppendWireString(entries[i].first, out_)) return false;
      out_->push_back(':');
      if (!AppendWireString(entries[i].second, out_)) return false;
    }
    out_->push_back('}');
    return true;
  }

  std::string* out_;
};

// google.protobuf.Timestamp: seconds 1 (int64), nanos 2 (int32), each at
// most once.
bool ScanTimestamp(absl::string_view bytes, WireEvent* event) {
  WireReader reader(bytes);
  bool seen[3] = {false, false, false};
  while (!reader.done()) {
    uint32_t field;
    int type;
    uint64_t number;
    if (!reader.Next(&field, &type) || type != WireReader::kVarint || field > 2 || seen[field] ||
        !reader.Varint(&number)) {
      return false;
    }
    seen[field] = true;
    if (field == 1) {
      event->timestamp_seconds = static_cast<int64_t>(number);
    } else {
      event->timestamp_nanos = static_cast<int32_t>(static_cast<uint32_t>(number));
    }
  }
  return true;
}

}  // namespace

bool ScanWireEvent(absl::string_view bytes, WireEvent* event) {
  // Field by field: GCC 12 takes moving an empty InlinedVector for a read of
  // uninitialized memory.
  event->event = event->distinct_id = event->uuid = {};
  event->properties = event->set = event->set_once = {};
  event->groups.clear();
  event->has_set = event->has_set_once = event->has_timestamp = false;
  event->timestamp_seconds = 0;
  event->timestamp_nanos = 0;
  event->personless = event->historical_migration = false;
  event->geoip = 0;
  WireReader reader(bytes);
  uint32_t seen = 0;
  while (!reader.done()) {
    uint32_t field;
    int type;
    if (!reader.Next(&field, &type)) return false;
    if (field != 6) {  // groups is repeated; every other field singular.
      if (field >= 32 || (seen & (1u << field)) != 0) return false;
      seen |= 1u << field;
    }
    const bool length_delimited = type == WireReader::kLengthDelimited;
    uint64_t number = 0;
    absl::string_view bytes_of;
    switch (field) {
      case 1:
        if (!length_delimited || !reader.Bytes(&event->event)) return false;
        break;
      case 2:
        if (!length_delimited || !reader.Bytes(&event->distinct_id)) return false;
        break;
      case 3:
        if (!length_delimited || !reader.Bytes(&event->properties)) return false;
        break;
      case 4:
        if (!length_delimited || !reader.Bytes(&bytes_of) || !ScanTimestamp(bytes_of, event)) {
          return false;
        }
        event->has_timestamp = true;
        break;
      case 5:
        if (!length_delimited || !reader.Bytes(&event->uuid)) return false;
        break;
      case 6:
        if (!length_delimited || !reader.Bytes(&bytes_of)) return false;
        event->groups.push_back(bytes_of);
        break;
      case 7:
        if (!length_delimited || !reader.Bytes(&event->set)) return false;
        event->has_set = true;
        break;
      case 8:
        if (!length_delimited || !reader.Bytes(&event->set_once)) return false;
        event->has_set_once = true;
        break;
      case 9:
        if (type != WireReader::kVarint || !reader.Varint(&number)) return false;
        event->personless = number != 0;
        break;
      case 11:
        if (type != WireReader::kVarint || !reader.Varint(&number)) return false;
        event->historical_migration = number != 0;
        break;
      case 12:  // An enum: protobuf keeps the low 32 bits.
        if (type != WireReader::kVarint || !reader.Varint(&number)) return false;
        event->geoip = static_cast<int32_t>(static_cast<uint32_t>(number));
        break;
      default:
        return false;
    }
  }
  return true;
}

bool ScanCaptureRequest(absl::string_view bytes, WireCaptureRequest* request, size_t max_events) {
  request->project = {};
  request->ack_mode = 0;
  request->events.clear();
  WireReader reader(bytes);
  bool has_project = false;
  bool has_ack_mode = false;
  while (!reader.done()) {
    uint32_t field;
    int type;
    if (!reader.Next(&field, &type)) return false;
    absl::string_view value;
    uint64_t number;
    if (field == 1 && !has_project && type == WireReader::kLengthDelimited) {
      has_project = true;
      if (!reader.Bytes(&request->project)) return false;
    } else if (field == 2 && type == WireReader::kLengthDelimited) {
      if (request->events.size() >= max_events || !reader.Bytes(&value)) return false;
      request->events.push_back(value);
    } else if (field == 3 && !has_ack_mode && type == WireReader::kVarint) {
      has_ack_mode = true;
      if (!reader.Varint(&number)) return false;
      // An enum: protobuf keeps the low 32 bits.
      request->ack_mode = static_cast<int32_t>(static_cast<uint32_t>(number));
    } else {
      return false;
    }
  }
  return google::protobuf::internal::IsStructurallyValidUTF8(
      request->project.data(), static_cast<int>(request->project.size()));
}

bool ScanCaptureEventRequest(absl::string_view bytes, WireCaptureRequest* request) {
  // Stops at a second event: the list never grows past one.
  return ScanCaptureRequest(bytes, request, /*max_events=*/1) && request->events.size() == 1;
}

bool WireEventJson(const WireEvent& event, const WireEventJsonOptions& options, std::string* out) {
  out->clear();
  WireWriter writer(out);
  // Top-level keys in sorted order, as EventJson.
  out->append("{\"distinct_id\":");
  if (!AppendWireString(event.distinct_id, out)) return false;
  out->append(",\"event\":");
  if (!AppendWireString(event.event, out)) return false;
  out->append(",\"properties\":");
  if (!writer.Properties(event, options)) return false;
  out->append(",\"timestamp\":");
  if (!AppendJsonString(options.timestamp, out)) return false;
  out->append(",\"uuid\":");
  if (!AppendJsonString(options.uuid, out)) return false;
  out->push_back('}');
  return true;
}

}  // namespace posthog_gateway
