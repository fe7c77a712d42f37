// Compilation of a `/flags/definitions` body into the forms of
// compiled_flag.h (see evaluator.h for the contract).

#include <openssl/sha.h>

#include "server/flags/evaluator.h"

// The low-level SHA1_* calls are deprecated in OpenSSL 3 but are the only
// ones that let a flag keep the SHA-1 state of its `key.` prefix and copy it
// per evaluation (EVP would allocate a context each time).
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "re2/re2.h"
#include "server/flags/compiled_flag.h"
#include "server/flags/values.h"
#include "server/posthog/flag_result_wire.h"
#include "server/posthog/value_wire.h"

namespace posthog_gateway::flags {

using nlohmann::json;

CompiledDefinitions::CompiledDefinitions() = default;
CompiledDefinitions::~CompiledDefinitions() = default;

const CompiledFlag* CompiledDefinitions::Find(absl::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

const std::string& CompiledDefinitions::FlagKey(const CompiledFlag& flag) { return flag.key; }

bool CompiledDefinitions::HasExperiment(const CompiledFlag& flag) { return flag.has_experiment; }

namespace {

int OptionalIndex(const json& object, const char* field) {
  if (!object.is_object()) return -1;
  auto it = object.find(field);
  if (it == object.end() || !it->is_number_integer()) return -1;
  return it->get<int>();
}

// The field readers below never throw: PostHog stores filters as JSON its API
// does not type-check, and nlohmann's value() or get<T>() on a member of
// another type throws, which would take the gateway down on one odd flag.

int64_t IntField(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_number()) return 0;
  if (it->is_number_float()) {
    // A cast of a double outside int64_t's range is undefined.
    const double value = it->get<double>();
    if (!(value > -9.2e18 && value < 9.2e18)) return 0;
    return static_cast<int64_t>(value);
  }
  return it->get<int64_t>();
}

std::string StringField(const json& object, const char* field, std::string fallback) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

bool BoolField(const json& object, const char* field) {
  if (!object.is_object()) return false;
  auto it = object.find(field);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

void CompileDate(CompiledProperty* property) {
  std::string buffer;
  if (!property->value.is_string()) return;
  absl::string_view text = property->value.get_ref<const std::string&>();
  // Relative: ^-?(\d+)([hdwmy])$ with a number below 10000.
  static const LazyRE2 kRelative = {R"(^-?([0-9]+)([a-z])$)"};
  std::string count;
  std::string unit;
  if (RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *kRelative, &count, &unit)) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(count, &n) || n >= 10000) return;
    if (unit != "h" && unit != "d" && unit != "w" && unit != "m" && unit != "y") return;
    property->date_relative = true;
    property->relative_count = n;
    property->relative_unit = unit[0];
    property->date_ok = true;
    return;
  }
  if (text.size() == 4 && std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    property->date_year_only = absl::SimpleAtoi(text, &property->date_year);
    property->date_ok = property->date_year_only;
    return;
  }
  property->date_ok = ParseIsoTime(text, &property->date_absolute);
}

void CompileSemver(CompiledProperty* property) {
  std::string buffer;
  absl::string_view text = ValueStr(property->value, &buffer);
  text = absl::StripAsciiWhitespace(text);
  Semver low;
  switch (property->op) {
    // The value is a bare version: a `~` or `^` prefix is not a version
    // (posthog-node cannot evaluate it and PostHog refuses it), so it stays
    // unparsed and the property inconclusive.
    case Op::kSemverTilde: {
      if (!ParseSemver(text, &low)) return;
      property->semver = low;
      property->semver_high = Semver{low.major, low.minor + 1, 0};
      break;
    }
    case Op::kSemverCaret: {
      if (!ParseSemver(text, &low)) return;
      property->semver = low;
      if (low.major > 0) {
        property->semver_high = Semver{low.major + 1, 0, 0};
      } else if (low.minor > 0) {
        property->semver_high = Semver{0, low.minor + 1, 0};
      } else {
        property->semver_high = Semver{0, 0, low.patch + 1};
      }
      break;
    }
    case Op::kSemverWildcard: {
      // `1.*`, `1.2.*`: the prefix before the first `*`. Only major and
      // minor count (`1.2.3.*` is `1.2.*`), as in posthog-node.
      std::string prefix(text.substr(0, text.find('*')));
      while (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
      int parts = 0;
      if (prefix.empty() || !ParseSemver(prefix, &low, &parts)) return;
      if (parts == 1) {
        property->semver = Semver{low.major, 0, 0};
        property->semver_high = Semver{low.major + 1, 0, 0};
      } else {
        property->semver = Semver{low.major, low.minor, 0};
        property->semver_high = Semver{low.major, low.minor + 1, 0};
      }
      break;
    }
    default:
      if (!ParseSemver(text, &low)) return;
      property->semver = low;
  }
  property->semver_ok = true;
}

CompiledProperty CompileProperty(const json& filter) {
  CompiledProperty property;
  std::string buffer;
  const std::string type = StringField(filter, "type", "person");
  if (filter.contains("key") && filter["key"].is_string()) property.key = filter["key"];
  property.value = filter.contains("value") ? filter["value"] : json();
  property.negation = BoolField(filter, "negation");
  property.op_name = filter.contains("operator") && filter["operator"].is_string()
                         ? filter["operator"].get<std::string>()
                         : std::string();
  if (type == "cohort") {
    property.kind = CompiledProperty::Kind::kCohort;
    property.op = property.op_name.empty() ? Op::kIn : ParseOp(property.op_name);
    property.cohort_id = std::string(ValueStr(property.value, &buffer));
    return property;
  }
  if (type == "flag") {
    property.kind = CompiledProperty::Kind::kFlag;
    property.op = ParseOp(property.op_name);
    auto chain = filter.find("dependency_chain");
    if (chain != filter.end() && chain->is_array()) {
      property.chain_present = true;
      for (const json& key : *chain) {
        if (key.is_string()) property.chain.push_back(key.get<std::string>());
      }
    }
    return property;
  }
  property.op = property.op_name.empty() ? Op::kExact : ParseOp(property.op_name);
  property.value_str = std::string(ValueStr(property.value, &buffer));
  property.folded = Fold(property.value_str);
  if (property.value.is_array()) {
    property.is_list = true;
    for (const json& item : property.value) {
      property.folded_list.push_back(Fold(ValueStr(item, &buffer)));
    }
  }
  property.has_number = AsNumber(property.value, &property.number);
  property.boolean_compare = IsTruthyOrFalsy(property.value);
  property.value_truthy = property.boolean_compare && IsTruthy(property.value);
  if ((property.op == Op::kExact || property.op == Op::kIsNot) && !property.boolean_compare) {
    if (property.is_list) {
      for (const json& item : property.value) {
        property.unicode_list.push_back(UnicodeLiteral(ValueStr(item, &buffer)));
      }
    } else {
      property.unicode_exact = UnicodeLiteral(property.value_str);
    }
  }
  switch (property.op) {
    case Op::kRegex:
    case Op::kNotRegex: {
      RE2::Options options;
      options.set_log_errors(false);
      auto regex = std::make_unique<RE2>(
          re2::StringPiece(property.value_str.data(), property.value_str.size()), options);
      if (regex->ok()) {
        property.regex = std::move(regex);
      } else {
        property.regex_invalid = InvalidEverywhere(regex->error_code());
      }
      break;
    }
    case Op::kDateBefore:
    case Op::kDateAfter:
      CompileDate(&property);
      break;
    case Op::kSemverEq:
    case Op::kSemverNeq:
    case Op::kSemverGt:
    case Op::kSemverGte:
    case Op::kSemverLt:
    case Op::kSemverLte:
    case Op::kSemverTilde:
    case Op::kSemverCaret:
    case Op::kSemverWildcard:
      CompileSemver(&property);
      break;
    default:
      break;
  }
  return property;
}

PropertyGroup CompileGroup(const json& group) {
  PropertyGroup compiled;
  if (!group.is_object() || group.empty()) return compiled;  // {} matches.
  const std::string type = StringField(group, "type", "");
  if (type != "AND" && type != "OR") {
    compiled.malformed = true;
    return compiled;
  }
  compiled.is_and = type == "AND";
  auto values = group.find("values");
  if (values == group.end() || values->is_null()) return compiled;
  if (!values->is_array()) {
    compiled.malformed = true;
    return compiled;
  }
  for (const json& value : *values) {
    if (!value.is_object()) {
      compiled.malformed = true;
      continue;
    }
    if (value.contains("values")) {
      compiled.groups.push_back(CompileGroup(value));
    } else {
      compiled.properties.push_back(CompileProperty(value));
    }
  }
  return compiled;
}

std::unique_ptr<CompiledFlag> CompileFlag(const json& definition) {
  auto flag = std::make_unique<CompiledFlag>();
  flag->key = StringField(definition, "key", "");
  flag->id = IntField(definition, "id");
  flag->version = IntField(definition, "version");
  flag->active = !definition.contains("active") || BoolField(definition, "active");
  flag->ensure_experience_continuity = BoolField(definition, "ensure_experience_continuity");
  flag->has_experiment = BoolField(definition, "has_experiment");
  SHA1_Init(&flag->prefix);
  SHA1_Update(&flag->prefix, flag->key.data(), flag->key.size());
  SHA1_Update(&flag->prefix, ".", 1);

  static const json kEmpty = json::object();
  const json& filters = definition.contains("filters") && definition["filters"].is_object()
                            ? definition["filters"]
                            : kEmpty;
  auto bucketing_is_device = [](const json& object) {
    auto it = object.find("bucketing_identifier");
    return it != object.end() && it->is_string() && *it == "device_id";
  };
  flag->bucket_by_device = bucketing_is_device(definition) || bucketing_is_device(filters);
  flag->aggregation_group_type_index = OptionalIndex(filters, "aggregation_group_type_index");
  flag->early_exit = BoolField(filters, "early_exit");
  flag->feature_enrollment = BoolField(filters, "feature_enrollment");
  flag->enrollment_property = absl::StrCat("$feature_enrollment/", flag->key);

  if (auto multivariate = filters.find("multivariate");
      multivariate != filters.end() && multivariate->is_object()) {
    auto variants = multivariate->find("variants");
    if (variants != multivariate->end() && variants->is_array()) {
      double value_min = 0;
      for (const json& variant : *variants) {
        if (!variant.is_object()) continue;
        CompiledVariant compiled;
        compiled.key = StringField(variant, "key", "");
        double rollout = 0;
        if (auto it = variant.find("rollout_percentage"); it != variant.end()) {
          AsNumber(*it, &rollout);
        }
        compiled.value_min = value_min;
        compiled.value_max = value_min + rollout / 100;
        value_min = compiled.value_max;
        flag->variants.push_back(std::move(compiled));
      }
    }
  }

  if (auto groups = filters.find("groups"); groups != filters.end() && groups->is_array()) {
    for (const json& group : *groups) {
      if (!group.is_object()) continue;
      CompiledCondition condition;
      if (auto properties = group.find("properties");
          properties != group.end() && properties->is_array()) {
        for (const json& property : *properties) {
          if (!property.is_object()) continue;
          // A condition's own filters ignore `negation`: PostHog's flags
          // service applies it only inside cohorts (flag filters use
          // operators such as is_not instead), and so does posthog-node.
          condition.properties.push_back(CompileProperty(property));
          condition.properties.back().negation = false;
        }
      }
      // A number, or a string holding one (as JavaScript reads it).
      if (auto rollout = group.find("rollout_percentage");
          rollout != group.end() && !rollout->is_null()) {
        condition.has_rollout = true;
        if (!AsNumber(*rollout, &condition.rollout)) {
          flag->malformed =
              absl::StrCat("rollout_percentage ", rollout->dump(), " is not a number");
        }
      }
      if (auto variant = group.find("variant"); variant != group.end() && variant->is_string()) {
        for (const CompiledVariant& known : flag->variants) {
          if (known.key == *variant) condition.variant_override = known.key;
        }
      }
      condition.aggregation_group_type_index = OptionalIndex(group, "aggregation_group_type_index");
      flag->conditions.push_back(std::move(condition));
    }
  }

  // Holdouts: `holdout {id, exclusion_percentage}` (newest) or
  // `holdout_groups[0] {rollout_percentage, variant: "holdout-<id>"}`.
  // A holdout without a numeric id and percentage is ignored, as the SDKs
  // do; the percentage is clamped to [0, 100].
  if (auto holdout = filters.find("holdout"); holdout != filters.end() && holdout->is_object()) {
    auto id = holdout->find("id");
    auto percentage = holdout->find("exclusion_percentage");
    if (id != holdout->end() && id->is_number_integer() && percentage != holdout->end() &&
        percentage->is_number()) {
      flag->has_holdout = true;
      flag->holdout_percentage = std::clamp(percentage->get<double>(), 0.0, 100.0);
      flag->holdout_variant = absl::StrCat("holdout-", id->get<int64_t>());
    }
  } else if (auto groups = filters.find("holdout_groups"); groups != filters.end() &&
                                                           groups->is_array() && !groups->empty() &&
                                                           (*groups)[0].is_object()) {
    const json& group = (*groups)[0];
    flag->has_holdout = true;
    if (auto rollout = group.find("rollout_percentage");
        rollout != group.end() && rollout->is_number()) {
      flag->holdout_percentage = rollout->get<double>();
    }
    auto variant = group.find("variant");
    flag->holdout_variant =
        variant != group.end() && variant->is_string() ? variant->get<std::string>() : "holdout";
  }

  if (auto payloads = filters.find("payloads");
      payloads != filters.end() && payloads->is_object()) {
    for (auto it = payloads->begin(); it != payloads->end(); ++it) {
      if (it->is_null()) continue;
      CompiledPayload& payload = flag->payloads[it.key()];
      if (it->is_string()) {
        json parsed = json::parse(it->get_ref<const std::string&>(), nullptr, false);
        payload.value = parsed.is_discarded() ? *it : std::move(parsed);
      } else {
        payload.value = *it;
      }
      payload.value_bytes = value_wire::EncodeValue(payload.value);
    }
  }
  // What a reply says of this flag whatever the person: encoded here, once
  // per definitions (formatting the fields per result was most of the
  // reply's cost in a perf profile of 50 flags, issue 18).
  auto value = [&flag](absl::string_view variant) {
    CompiledValue compiled;
    auto it = flag->payloads.find(variant.empty() ? absl::string_view("true") : variant);
    if (it != flag->payloads.end()) compiled.payload = &it->second;
    compiled.fields = flag_result_wire::EnabledFields(
        variant, compiled.payload != nullptr ? &compiled.payload->value_bytes : nullptr);
    return compiled;
  };
  flag->values.push_back(value(""));
  for (const CompiledVariant& variant : flag->variants) flag->values.push_back(value(variant.key));
  flag->encoded.key_field = flag_result_wire::KeyField(flag->key);
  flag->encoded.tail = flag_result_wire::LocalTail(flag->id, flag->version);
  return flag;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CompiledDefinitions>> CompileDefinitions(json body) {
  if (!body.is_object() || !body.contains("flags") || !body["flags"].is_array()) {
    return absl::InvalidArgumentError("flag definitions: expected an object with a `flags` array");
  }
  auto definitions = std::make_shared<CompiledDefinitions>();
  for (const json& flag : body["flags"]) {
    if (!flag.is_object() || !flag.contains("key") || !flag["key"].is_string()) continue;
    if (BoolField(flag, "deleted")) continue;
    definitions->flags_.push_back(CompileFlag(flag));
  }
  for (size_t i = 0; i < definitions->flags_.size(); ++i) {
    CompiledFlag& flag = *definitions->flags_[i];
    definitions->by_key_.emplace(flag.key, &flag);
    flag.index = static_cast<int>(i);
    const bool person_bucketed = flag.active && flag.malformed.empty() &&
                                 !flag.ensure_experience_continuity &&
                                 flag.aggregation_group_type_index < 0 && !flag.bucket_by_device;
    flag.likely_rollout_hash =
        person_bucketed &&
        std::any_of(flag.conditions.begin(), flag.conditions.end(),
                    [](const CompiledCondition& c) { return c.has_rollout && c.rollout < 100; });
    flag.likely_variant_hash = person_bucketed && !flag.variants.empty();
    auto add_job = [&definitions, &flag](bool variant) {
      CompiledDefinitions::HashJob job;
      job.flag = flag.index;
      job.variant = variant;
      job.state[0] = flag.prefix.h0;
      job.state[1] = flag.prefix.h1;
      job.state[2] = flag.prefix.h2;
      job.state[3] = flag.prefix.h3;
      job.state[4] = flag.prefix.h4;
      job.buffered = flag.prefix.num;
      job.bits = (static_cast<uint64_t>(flag.prefix.Nh) << 32) | flag.prefix.Nl;
      std::memcpy(job.tail, flag.prefix.data, job.buffered);
      definitions->hash_jobs_.push_back(job);
      return static_cast<int>(definitions->hash_jobs_.size()) - 1;
    };
    if (flag.likely_rollout_hash) flag.rollout_hash_job = add_job(false);
    if (flag.likely_variant_hash) flag.variant_hash_job = add_job(true);
  }
  if (auto cohorts = body.find("cohorts"); cohorts != body.end() && cohorts->is_object()) {
    for (auto it = cohorts->begin(); it != cohorts->end(); ++it) {
      auto cohort = std::make_unique<CompiledCohort>();
      cohort->root = CompileGroup(*it);
      definitions->cohorts_.emplace(it.key(), std::move(cohort));
    }
  }
  // Number the plain properties' keys, so that one call's evaluations look
  // each key up in the caller's properties once (EvaluationCache).
  // Filters that are the same but for `negation` (applied after matching)
  // share a number too.
  absl::flat_hash_map<std::string, int> slots;
  absl::flat_hash_map<std::string, int> filters;
  auto number = [&slots, &filters](CompiledProperty& property) {
    if (property.kind != CompiledProperty::Kind::kPlain) return;
    property.key_slot = slots.emplace(property.key, static_cast<int>(slots.size())).first->second;
    std::string filter =
        absl::StrCat(property.key.size(), ":", property.key, property.op_name.size(), ":",
                     property.op_name, property.value.dump());
    property.filter_slot =
        filters.emplace(std::move(filter), static_cast<int>(filters.size())).first->second;
  };
  std::function<void(PropertyGroup&)> number_group = [&](PropertyGroup& group) {
    for (PropertyGroup& child : group.groups) number_group(child);
    for (CompiledProperty& property : group.properties) number(property);
  };
  for (const auto& flag : definitions->flags_) {
    for (CompiledCondition& condition : flag->conditions) {
      for (CompiledProperty& property : condition.properties) number(property);
    }
  }
  for (auto& [id, cohort] : definitions->cohorts_) number_group(cohort->root);
  definitions->property_keys_ = static_cast<int>(slots.size());
  definitions->plain_filters_ = static_cast<int>(filters.size());
  if (auto mapping = body.find("group_type_mapping");
      mapping != body.end() && mapping->is_object()) {
    for (auto it = mapping->begin(); it != mapping->end(); ++it) {
      int index = 0;
      if (absl::SimpleAtoi(it.key(), &index) && it->is_string()) {
        definitions->group_types_[index] = it->get<std::string>();
      }
    }
  }
  definitions->minimal_flag_called_events_ = BoolField(body, "minimal_flag_called_events");
  definitions->raw_ = std::move(body);
  return std::shared_ptr<const CompiledDefinitions>(std::move(definitions));
}

}  // namespace posthog_gateway::flags
