#include "server/posthog/value_wire.h"

#include <cstdint>

#include "server/posthog/wire_format.h"

namespace posthog_gateway::value_wire {
namespace {

// Field numbers of google/protobuf/struct.proto.
enum ValueField {
  kValueNull = 1,
  kValueNumber = 2,
  kValueString = 3,
  kValueBool = 4,
  kValueStruct = 5,
  kValueList = 6,
};
enum StructField { kStructFields = 1 };
enum ListField { kListValues = 1 };

using wire::BytesFieldSize;
using wire::kDoubleFieldSize;
using wire::kEntryKey;
using wire::kEntryValue;
using wire::kLength;
using wire::kVarint;
using wire::PutBytes;
using wire::PutDoubleField;
using wire::PutTag;
using wire::PutVarint;

// The contents of a ListValue (`json` an array) and of a Struct (`json` an
// object). Nested values are sized again by each level above them: payloads
// are small and shallow, and this runs once per definitions, not per call.
size_t ListSize(const nlohmann::json& json) {
  size_t list = 0;
  for (const auto& item : json) list += BytesFieldSize(ValueSize(item));
  return list;
}

size_t StructSize(const nlohmann::json& json) {
  size_t fields = 0;
  for (auto it = json.begin(); it != json.end(); ++it) {
    fields +=
        BytesFieldSize(BytesFieldSize(it.key().size()) + BytesFieldSize(ValueSize(it.value())));
  }
  return fields;
}

}  // namespace

size_t ValueSize(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      return 2;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return kDoubleFieldSize;
    case nlohmann::json::value_t::string:
      return BytesFieldSize(json.get_ref<const std::string&>().size());
    case nlohmann::json::value_t::array:
      return BytesFieldSize(ListSize(json));
    case nlohmann::json::value_t::object:
      return BytesFieldSize(StructSize(json));
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
    case nlohmann::json::value_t::binary:
      break;
  }
  return 2;  // null_value: NULL_VALUE (0), written because the oneof has presence.
}

char* PutValue(const nlohmann::json& json, char* p) {
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      p = PutTag(kValueBool, kVarint, p);
      *p++ = json.get<bool>() ? 1 : 0;
      return p;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: {
      return PutDoubleField(kValueNumber, json.get<double>(), p);
    }
    case nlohmann::json::value_t::string:
      return PutBytes(kValueString, json.get_ref<const std::string&>(), p);
    case nlohmann::json::value_t::array: {
      p = PutTag(kValueList, kLength, p);
      p = PutVarint(ListSize(json), p);
      for (const auto& item : json) {
        p = PutTag(kListValues, kLength, p);
        p = PutVarint(ValueSize(item), p);
        p = PutValue(item, p);
      }
      return p;
    }
    case nlohmann::json::value_t::object: {
      p = PutTag(kValueStruct, kLength, p);
      p = PutVarint(StructSize(json), p);
      for (auto it = json.begin(); it != json.end(); ++it) {
        const size_t value = ValueSize(it.value());
        p = PutTag(kStructFields, kLength, p);
        p = PutVarint(BytesFieldSize(it.key().size()) + BytesFieldSize(value), p);
        p = PutBytes(kEntryKey, it.key(), p);
        p = PutTag(kEntryValue, kLength, p);
        p = PutVarint(value, p);
        p = PutValue(it.value(), p);
      }
      return p;
    }
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
    case nlohmann::json::value_t::binary:
      break;
  }
  p = PutTag(kValueNull, kVarint, p);
  *p++ = 0;
  return p;
}

std::string EncodeValue(const nlohmann::json& json) {
  std::string bytes(ValueSize(json), '\0');
  char* end = PutValue(json, bytes.data());
  bytes.resize(end - bytes.data());
  return bytes;
}

}  // namespace posthog_gateway::value_wire
