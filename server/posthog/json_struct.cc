#include "server/posthog/json_struct.h"

#include <cmath>
#include <limits>

namespace posthog_gateway {

google::protobuf::Value ValueFromJson(const nlohmann::json& json) {
  google::protobuf::Value value;
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      value.set_null_value(google::protobuf::NULL_VALUE);
      break;
    case nlohmann::json::value_t::boolean:
      value.set_bool_value(json.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      value.set_number_value(json.get<double>());
      break;
    case nlohmann::json::value_t::string:
      value.set_string_value(json.get_ref<const std::string&>());
      break;
    case nlohmann::json::value_t::array: {
      auto* list = value.mutable_list_value();
      for (const auto& item : json) *list->add_values() = ValueFromJson(item);
      break;
    }
    case nlohmann::json::value_t::object:
      *value.mutable_struct_value() = StructFromJson(json);
      break;
    case nlohmann::json::value_t::binary:
      value.set_null_value(google::protobuf::NULL_VALUE);
      break;
  }
  return value;
}

google::protobuf::Struct StructFromJson(const nlohmann::json& json) {
  google::protobuf::Struct result;
  if (!json.is_object()) return result;
  auto& fields = *result.mutable_fields();
  for (const auto& item : json.items()) fields[item.key()] = ValueFromJson(item.value());
  return result;
}

nlohmann::json JsonFromValue(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      return nullptr;
    case google::protobuf::Value::kBoolValue:
      return value.bool_value();
    case google::protobuf::Value::kNumberValue: {
      const double number = value.number_value();
      // JSON has no NaN or infinity; PostHog turns them into null too.
      if (!std::isfinite(number)) return nullptr;
      constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53
      if (std::trunc(number) == number && std::fabs(number) <= kMaxExactInteger) {
        return static_cast<int64_t>(number);
      }
      return number;
    }
    case google::protobuf::Value::kStringValue:
      return value.string_value();
    case google::protobuf::Value::kListValue: {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& item : value.list_value().values()) {
        list.push_back(JsonFromValue(item));
      }
      return list;
    }
    case google::protobuf::Value::kStructValue:
      return JsonFromStruct(value.struct_value());
  }
  return nullptr;
}

nlohmann::json JsonFromStruct(const google::protobuf::Struct& value) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [key, field] : value.fields()) object[key] = JsonFromValue(field);
  return object;
}

}  // namespace posthog_gateway
