#include "server/flags/flag_json.h"

#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway::flags {

using nlohmann::json;
using posthog::v1::Flag;
using posthog::v1::FlagCondition;
using posthog::v1::FlagFilters;
using posthog::v1::PropertyFilter;

namespace {

constexpr char kOperatorPrefix[] = "PROPERTY_OPERATOR_";

absl::Status TypeError(const std::string& field, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat("flag JSON: `", field, "` must be ", want));
}

// Numbers PostHog writes as integers come back as integers.
json Number(double value) {
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    return static_cast<int64_t>(value);
  }
  return value;
}

// Removes `key` from `object` and returns it (null when absent).
json Take(json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return json();
  json value = std::move(*it);
  object.erase(it);
  return value;
}

// PropertyFromJson types what it can of one property filter; the rest
// (dependency_chain, label, fields of unexpected types, ...) goes to `rest`.
PropertyFilter PropertyFromJson(json object, json* rest) {
  PropertyFilter filter;
  json untyped = json::object();
  auto keep = [&](const char* key, json value) { untyped[key] = std::move(value); };
  if (object.contains("key")) {
    json key = Take(object, "key");
    key.is_string() ? filter.set_key(key.get<std::string>()) : keep("key", std::move(key));
  }
  if (object.contains("value")) *filter.mutable_value() = ValueFromJson(Take(object, "value"));
  if (object.contains("operator")) {
    json op = Take(object, "operator");
    posthog::v1::PropertyOperator parsed;
    if (!op.is_string()) {
      keep("operator", std::move(op));
    } else if (posthog::v1::PropertyOperator_Parse(
                   absl::StrCat(kOperatorPrefix, absl::AsciiStrToUpper(op.get<std::string>())),
                   &parsed) &&
               parsed != posthog::v1::PROPERTY_OPERATOR_UNSPECIFIED) {
      filter.set_operator_(parsed);
    } else {
      filter.set_raw_operator(op.get<std::string>());
    }
  }
  if (object.contains("type")) {
    json type = Take(object, "type");
    type.is_string() ? filter.set_type(type.get<std::string>()) : keep("type", std::move(type));
  }
  if (object.contains("group_type_index")) {
    json index = Take(object, "group_type_index");
    if (index.is_number_integer()) {
      filter.set_group_type_index(index.get<int>());
    } else {
      keep("group_type_index", std::move(index));
    }
  }
  if (object.contains("negation")) {
    json negation = Take(object, "negation");
    if (negation == json(true)) {
      filter.set_negation(true);
    } else {
      keep("negation", std::move(negation));  // An explicit false comes back.
    }
  }
  untyped.update(object);
  *rest = std::move(untyped);
  return filter;
}

json JsonFromProperty(const PropertyFilter& filter) {
  json object = json::object();
  if (!filter.key().empty()) object["key"] = filter.key();
  if (filter.has_value()) object["value"] = JsonFromValue(filter.value());
  if (!filter.raw_operator().empty()) {
    object["operator"] = filter.raw_operator();
  } else if (filter.operator_() != posthog::v1::PROPERTY_OPERATOR_UNSPECIFIED) {
    object["operator"] = absl::AsciiStrToLower(
        posthog::v1::PropertyOperator_Name(filter.operator_()).substr(sizeof(kOperatorPrefix) - 1));
  }
  if (!filter.type().empty()) object["type"] = filter.type();
  if (filter.has_group_type_index()) object["group_type_index"] = filter.group_type_index();
  if (filter.negation()) object["negation"] = true;
  return object;
}

absl::StatusOr<FlagCondition> ConditionFromJson(json object, const std::string& field) {
  if (!object.is_object()) return TypeError(field, "an object");
  FlagCondition condition;
  json extra = json::object();
  json properties = Take(object, "properties");
  if (properties.is_array()) {
    // Untyped fields of each property ride in extra.property_extras[i].
    json property_extras = json::array();
    bool any_extra = false;
    for (size_t i = 0; i < properties.size(); ++i) {
      if (!properties[i].is_object()) {
        return TypeError(absl::StrCat(field, ".properties[", i, "]"), "an object");
      }
      json rest;
      *condition.add_properties() = PropertyFromJson(std::move(properties[i]), &rest);
      any_extra = any_extra || !rest.empty();
      property_extras.push_back(std::move(rest));
    }
    if (any_extra) extra["property_extras"] = std::move(property_extras);
  } else if (!properties.is_null()) {
    return TypeError(field + ".properties", "a list");
  }
  if (object.contains("rollout_percentage")) {
    json rollout = Take(object, "rollout_percentage");
    if (rollout.is_number()) {
      condition.set_rollout_percentage(rollout.get<double>());
    } else {
      extra["rollout_percentage"] = std::move(rollout);  // null comes back null.
    }
  }
  if (object.contains("variant")) {
    json variant = Take(object, "variant");
    if (variant.is_string()) {
      condition.set_variant(variant.get<std::string>());
    } else {
      extra["variant"] = std::move(variant);
    }
  }
  if (object.contains("aggregation_group_type_index")) {
    json index = Take(object, "aggregation_group_type_index");
    if (index.is_number_integer()) {
      condition.set_aggregation_group_type_index(index.get<int>());
    } else {
      extra["aggregation_group_type_index"] = std::move(index);
    }
  }
  extra.update(object);
  if (!extra.empty()) *condition.mutable_extra() = StructFromJson(extra);
  return condition;
}

json JsonFromCondition(const FlagCondition& condition) {
  json object = condition.has_extra() ? JsonFromStruct(condition.extra()) : json::object();
  json property_extras = Take(object, "property_extras");
  json properties = json::array();
  for (int i = 0; i < condition.properties_size(); ++i) {
    json property = JsonFromProperty(condition.properties(i));
    if (property_extras.is_array() && i < static_cast<int>(property_extras.size()) &&
        property_extras[i].is_object()) {
      property.update(property_extras[i]);
    }
    properties.push_back(std::move(property));
  }
  object["properties"] = std::move(properties);
  if (condition.has_rollout_percentage()) {
    object["rollout_percentage"] = Number(condition.rollout_percentage());
  }
  if (!condition.variant().empty()) object["variant"] = condition.variant();
  if (condition.has_aggregation_group_type_index()) {
    object["aggregation_group_type_index"] = condition.aggregation_group_type_index();
  }
  return object;
}

absl::StatusOr<FlagFilters> FiltersFromJson(json object) {
  FlagFilters filters;
  json extra = json::object();
  json groups = Take(object, "groups");
  if (groups.is_array()) {
    for (size_t i = 0; i < groups.size(); ++i) {
      absl::StatusOr<FlagCondition> condition =
          ConditionFromJson(std::move(groups[i]), absl::StrCat("filters.groups[", i, "]"));
      if (!condition.ok()) return condition.status();
      *filters.add_groups() = *std::move(condition);
    }
  } else if (!groups.is_null()) {
    return TypeError("filters.groups", "a list");
  }
  if (object.contains("multivariate")) {
    json multivariate = Take(object, "multivariate");
    if (multivariate.is_object() && multivariate.contains("variants") &&
        multivariate["variants"].is_array()) {
      json variants = Take(multivariate, "variants");
      json variant_extras = json::array();
      bool any_extra = false;
      for (json& variant : variants) {
        if (!variant.is_object()) return TypeError("filters.multivariate.variants[]", "objects");
        auto* typed = filters.add_variants();
        json key = Take(variant, "key");
        if (key.is_string()) typed->set_key(key.get<std::string>());
        if (variant.contains("name") && variant["name"].is_string()) {
          typed->set_name(Take(variant, "name").get<std::string>());
        }
        json rollout = Take(variant, "rollout_percentage");
        if (rollout.is_number()) typed->set_rollout_percentage(rollout.get<double>());
        any_extra = any_extra || !variant.empty();
        variant_extras.push_back(std::move(variant));
      }
      if (any_extra) extra["variant_extras"] = std::move(variant_extras);
    }
    extra["multivariate"] = std::move(multivariate);  // null, or its other fields.
  }
  if (object.contains("payloads")) {
    json payloads = Take(object, "payloads");
    if (payloads.is_object()) {
      for (auto it = payloads.begin(); it != payloads.end(); ++it) {
        (*filters.mutable_payloads())[it.key()] = ValueFromJson(it.value());
      }
    } else {
      extra["payloads"] = std::move(payloads);
    }
  }
  if (object.contains("aggregation_group_type_index")) {
    json index = Take(object, "aggregation_group_type_index");
    if (index.is_number_integer()) {
      filters.set_aggregation_group_type_index(index.get<int>());
    } else {
      extra["aggregation_group_type_index"] = std::move(index);
    }
  }
  extra.update(object);
  if (!extra.empty()) *filters.mutable_extra() = StructFromJson(extra);
  return filters;
}

json JsonFromFilters(const FlagFilters& filters) {
  json object = filters.has_extra() ? JsonFromStruct(filters.extra()) : json::object();
  json variant_extras = Take(object, "variant_extras");
  json groups = json::array();
  for (const FlagCondition& condition : filters.groups()) {
    groups.push_back(JsonFromCondition(condition));
  }
  object["groups"] = std::move(groups);
  if (filters.variants_size() > 0) {
    json multivariate = object.contains("multivariate") && object["multivariate"].is_object()
                            ? object["multivariate"]
                            : json::object();
    json variants = json::array();
    for (int i = 0; i < filters.variants_size(); ++i) {
      const auto& typed = filters.variants(i);
      json variant = {{"key", typed.key()}};
      if (!typed.name().empty()) variant["name"] = typed.name();
      variant["rollout_percentage"] = Number(typed.rollout_percentage());
      if (variant_extras.is_array() && i < static_cast<int>(variant_extras.size())) {
        variant.update(variant_extras[i]);
      }
      variants.push_back(std::move(variant));
    }
    multivariate["variants"] = std::move(variants);
    object["multivariate"] = std::move(multivariate);
  }
  if (!filters.payloads().empty() || !object.contains("payloads")) {
    json payloads = json::object();
    for (const auto& [key, value] : filters.payloads()) payloads[key] = JsonFromValue(value);
    object["payloads"] = std::move(payloads);
  }
  if (filters.has_aggregation_group_type_index()) {
    object["aggregation_group_type_index"] = filters.aggregation_group_type_index();
  }
  return object;
}

bool ParseTimestamp(const json& value, google::protobuf::Timestamp* out) {
  if (!value.is_string()) return false;
  return google::protobuf::util::TimeUtil::FromString(value.get<std::string>(), out);
}

}  // namespace

absl::StatusOr<Flag> FlagFromJson(const json& input) {
  if (!input.is_object()) return TypeError("flag", "an object");
  json object = input;
  Flag flag;
  json extra = json::object();
  auto take_string = [&](const char* key, std::string* out) {
    json value = Take(object, key);
    if (value.is_string()) {
      *out = value.get<std::string>();
    } else if (!value.is_null() || input.contains(key)) {
      extra[key] = value;
    }
  };
  auto take_int = [&](const char* key, auto setter) {
    json value = Take(object, key);
    if (value.is_number_integer()) {
      setter(value.get<int64_t>());
    } else if (input.contains(key)) {
      extra[key] = value;
    }
  };
  auto take_bool = [&](const char* key, auto setter) {
    json value = Take(object, key);
    if (value.is_boolean()) {
      setter(value.get<bool>());
    } else if (input.contains(key)) {
      extra[key] = value;
    }
  };
  take_int("id", [&](int64_t v) { flag.set_id(v); });
  take_string("key", flag.mutable_key());
  take_string("name", flag.mutable_name());
  take_bool("active", [&](bool v) { flag.set_active(v); });
  take_bool("deleted", [&](bool v) { flag.set_deleted(v); });
  take_int("version", [&](int64_t v) { flag.set_version(v); });
  take_bool("ensure_experience_continuity",
            [&](bool v) { flag.set_ensure_experience_continuity(v); });
  for (const char* key : {"created_at", "updated_at"}) {
    json value = Take(object, key);
    google::protobuf::Timestamp* target =
        std::string(key) == "created_at" ? flag.mutable_create_time() : flag.mutable_update_time();
    if (!ParseTimestamp(value, target)) {
      if (std::string(key) == "created_at") {
        flag.clear_create_time();
      } else {
        flag.clear_update_time();
      }
      if (input.contains(key)) extra[key] = value;
    }
  }
  json tags = Take(object, "tags");
  if (tags.is_array() &&
      std::all_of(tags.begin(), tags.end(), [](const json& t) { return t.is_string(); })) {
    for (const json& tag : tags) flag.add_tags(tag.get<std::string>());
  } else if (input.contains("tags")) {
    extra["tags"] = tags;
  }
  json filters = Take(object, "filters");
  if (filters.is_object()) {
    absl::StatusOr<FlagFilters> typed = FiltersFromJson(std::move(filters));
    if (!typed.ok()) return typed.status();
    *flag.mutable_filters() = *std::move(typed);
  } else if (input.contains("filters")) {
    extra["filters"] = filters;
  }
  for (auto it = object.begin(); it != object.end(); ++it) extra[it.key()] = it.value();
  if (!extra.empty()) *flag.mutable_extra() = StructFromJson(extra);
  return flag;
}

json JsonFromFlag(const Flag& flag) {
  json extra = flag.has_extra() ? JsonFromStruct(flag.extra()) : json::object();
  json object = extra;
  if (flag.id() != 0) object["id"] = flag.id();
  if (!flag.key().empty()) object["key"] = flag.key();
  if (!flag.name().empty() || !object.contains("name")) object["name"] = flag.name();
  object["active"] = flag.active();
  if (flag.deleted() || object.contains("deleted") || flag.id() != 0)
    object["deleted"] = flag.deleted();
  if (flag.version() != 0) object["version"] = flag.version();
  if (flag.ensure_experience_continuity() || flag.id() != 0) {
    object["ensure_experience_continuity"] = flag.ensure_experience_continuity();
  }
  if (flag.has_create_time()) {
    object["created_at"] = google::protobuf::util::TimeUtil::ToString(flag.create_time());
  }
  if (flag.has_update_time()) {
    object["updated_at"] = google::protobuf::util::TimeUtil::ToString(flag.update_time());
  }
  if (flag.tags_size() > 0 || flag.id() != 0) {
    json tags = json::array();
    for (const std::string& tag : flag.tags()) tags.push_back(tag);
    if (flag.tags_size() > 0 || !object.contains("tags")) object["tags"] = std::move(tags);
  }
  if (flag.has_filters()) object["filters"] = JsonFromFilters(flag.filters());
  return object;
}

}  // namespace posthog_gateway::flags
