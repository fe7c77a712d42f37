#include "server/capture/event_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

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

  void Number(double number) {
    // As JsonFromValue: JSON has no NaN or infinity; whole numbers that a
    // double holds exactly are integers.
    if (!std::isfinite(number)) {
      Raw("null");
      return;
    }
    constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53
    if (std::trunc(number) == number && std::fabs(number) <= kMaxExactInteger) {
      absl::StrAppend(out_, static_cast<int64_t>(number));
      return;
    }
    Raw(nlohmann::json(number).dump());
  }

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

}  // namespace

bool AppendJsonString(absl::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // Start of the bytes copied verbatim.
  size_t i = 0;
  while (i < text.size()) {
    // Runs of ordinary printable ASCII are copied in one append.
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

}  // namespace posthog_gateway
