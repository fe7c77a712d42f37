#include "emulator/flag_matcher.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "re2/re2.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 32;

// Str is Python's str() of a JSON scalar as the server compares it.
std::string Str(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_null()) return "null";
  return value.dump();
}

std::string Fold(const json& value) { return absl::AsciiStrToLower(Str(value)); }

std::optional<double> Number(const json& value) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    double d = 0;
    if (absl::SimpleAtod(value.get<std::string>(), &d) && std::isfinite(d)) {
      return d;
    }
  }
  return std::nullopt;
}

// ParseDate accepts a relative date ("-7d", "30h", "2w", "1m", "1y"), an ISO
// date or datetime (naive means UTC), or a number of epoch seconds.
std::optional<absl::Time> ParseDate(const json& value) {
  if (value.is_number()) return absl::FromUnixSeconds(value.get<int64_t>());
  if (!value.is_string()) return std::nullopt;
  std::string s = value.get<std::string>();
  static const LazyRE2 kRelative = {R"(^-?(\d+)([hdwmy])$)"};
  int n = 0;
  std::string unit;
  if (RE2::FullMatch(s, *kRelative, &n, &unit) && n < 10000) {
    absl::Time now = absl::Now();
    if (unit == "h") return now - absl::Hours(n);
    if (unit == "d") return now - absl::Hours(24 * n);
    if (unit == "w") return now - absl::Hours(24 * 7 * n);
    absl::CivilSecond c = absl::ToCivilSecond(now, absl::UTCTimeZone());
    absl::CivilMonth m(c);
    m -= unit == "m" ? n : 12 * n;
    absl::CivilDay last_day = absl::CivilDay(m + 1) - 1;
    absl::CivilDay day(m.year(), m.month(), std::min<int>(c.day(), last_day.day()));
    return absl::FromCivil(
        absl::CivilSecond(day.year(), day.month(), day.day(), c.hour(), c.minute(), c.second()),
        absl::UTCTimeZone());
  }
  if (absl::EndsWith(s, " UTC")) s = s.substr(0, s.size() - 4);
  if (absl::EndsWith(s, "Z")) s = s.substr(0, s.size() - 1) + "+00:00";
  absl::Time t;
  std::string err;
  for (const char* format : {"%Y-%m-%dT%H:%M:%E*S%Ez", "%Y-%m-%dT%H:%M:%E*S",
                             "%Y-%m-%d %H:%M:%E*S%Ez", "%Y-%m-%d %H:%M:%E*S", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, s, absl::UTCTimeZone(), &t, &err)) return t;
  }
  return std::nullopt;
}

// Semver parses "v1.2.3-rc1" into (1, 2, 3); missing parts are 0.
std::optional<std::array<long, 3>> Semver(const json& value) {
  std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(Str(value)));
  if (!s.empty() && s[0] == 'v') s = s.substr(1);
  s = s.substr(0, s.find_first_of("-+"));
  std::vector<std::string> parts = absl::StrSplit(s, '.');
  if (parts.empty() || parts.size() > 3 || parts[0].empty()) return std::nullopt;
  std::array<long, 3> out{0, 0, 0};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() || (parts[i].size() > 1 && parts[i][0] == '0')) {
      return std::nullopt;
    }
    if (!absl::SimpleAtoi(parts[i], &out[i]) || out[i] < 0) return std::nullopt;
  }
  return out;
}

bool MatchSemver(const std::string& op, const json& flag_value, const json& override_value) {
  auto actual = Semver(override_value);
  if (!actual) return false;
  if (op == "semver_wildcard") {
    std::string pattern = Str(flag_value);
    std::vector<std::string> parts = absl::StrSplit(pattern, '.');
    for (size_t i = 0; i < parts.size() && i < 3; ++i) {
      if (parts[i] == "*" || parts[i] == "x") return true;
      long n = 0;
      if (!absl::SimpleAtoi(parts[i], &n) || (*actual)[i] != n) return false;
    }
    return true;
  }
  std::string raw = Str(flag_value);
  if (op == "semver_tilde" && !raw.empty() && raw[0] == '~') raw = raw.substr(1);
  if (op == "semver_caret" && !raw.empty() && raw[0] == '^') raw = raw.substr(1);
  auto expected = Semver(json(raw));
  if (!expected) return false;
  if (op == "semver_eq") return *actual == *expected;
  if (op == "semver_neq") return *actual != *expected;
  if (op == "semver_gt") return *actual > *expected;
  if (op == "semver_gte") return *actual >= *expected;
  if (op == "semver_lt") return *actual < *expected;
  if (op == "semver_lte") return *actual <= *expected;
  std::array<long, 3> upper = *expected;
  if (op == "semver_tilde") {
    upper = {upper[0], upper[1] + 1, 0};
  } else if (op == "semver_caret") {
    if (upper[0] > 0) {
      upper = {upper[0] + 1, 0, 0};
    } else if (upper[1] > 0) {
      upper = {0, upper[1] + 1, 0};
    } else {
      upper = {0, 0, upper[2] + 1};
    }
  } else {
    return false;
  }
  return *actual >= *expected && *actual < upper;
}

}  // namespace

double Hash(absl::string_view prefix, absl::string_view identifier, absl::string_view salt) {
  const std::string input = absl::StrCat(prefix, identifier, salt);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  uint64_t top = 0;
  for (int i = 0; i < 8; ++i) top = (top << 8) | digest[i];
  top >>= 4;  // the first 15 hex digits
  return static_cast<double>(top) / static_cast<double>(uint64_t{0xFFFFFFFFFFFFFFF});
}

bool MatchProperty(const json& filter, const json& properties) {
  const std::string key = filter.value("key", "");
  const std::string op = filter.contains("operator") && filter["operator"].is_string()
                             ? filter["operator"].get<std::string>()
                             : "exact";
  const json value = filter.contains("value") ? filter["value"] : json();
  auto it = properties.find(key);
  if (it == properties.end()) return op == "is_not_set";
  const json& actual = *it;
  if (op == "is_set") return true;
  if (op == "is_not_set") return false;
  if (actual.is_null() && op != "is_not") return false;
  if (op == "exact" || op == "is_not") {
    bool equal = false;
    const std::string folded = Fold(actual);
    if (value.is_array()) {
      for (const json& v : value) equal = equal || Fold(v) == folded;
    } else {
      equal = Fold(value) == folded;
    }
    return op == "exact" ? equal : !equal;
  }
  if (op == "icontains" || op == "not_icontains") {
    bool contains = absl::StrContains(Fold(actual), Fold(value));
    return op == "icontains" ? contains : !contains;
  }
  if (op == "starts_with" || op == "not_starts_with") {
    bool m = absl::StartsWith(Fold(actual), Fold(value));
    return op == "starts_with" ? m : !m;
  }
  if (op == "ends_with" || op == "not_ends_with") {
    bool m = absl::EndsWith(Fold(actual), Fold(value));
    return op == "ends_with" ? m : !m;
  }
  if (op == "regex" || op == "not_regex") {
    RE2 re(Str(value), RE2::Quiet);
    if (!re.ok()) return false;
    bool m = RE2::PartialMatch(Str(actual), re);
    return op == "regex" ? m : !m;
  }
  if (op == "gt" || op == "gte" || op == "lt" || op == "lte") {
    auto a = Number(actual);
    auto b = Number(value);
    int cmp = 0;
    if (a && b) {
      cmp = *a < *b ? -1 : (*a > *b ? 1 : 0);
    } else {
      cmp = Str(actual).compare(Str(value));
      cmp = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
    }
    if (op == "gt") return cmp > 0;
    if (op == "gte") return cmp >= 0;
    if (op == "lt") return cmp < 0;
    return cmp <= 0;
  }
  if (op == "is_date_before" || op == "is_date_after" || op == "is_date_exact") {
    auto expected = ParseDate(value);
    auto got = ParseDate(actual);
    if (!expected || !got) return false;
    if (op == "is_date_before") return *got < *expected;
    if (op == "is_date_after") return *got > *expected;
    return *got == *expected;
  }
  if (absl::StartsWith(op, "semver_")) return MatchSemver(op, value, actual);
  return false;  // unknown operator
}

json FlagResult::Value() const {
  if (variant.has_value()) return *variant;
  return enabled;
}

struct FlagMatcher::Evaluation {
  const FlagEvaluationInput* input;
  absl::flat_hash_map<std::string, FlagResult> done;
  absl::flat_hash_set<std::string> in_progress;
};

FlagMatcher::FlagMatcher(std::vector<json> flags, json group_type_mapping,
                         absl::flat_hash_map<int64_t, CohortDefinition> cohorts)
    : group_type_mapping_(std::move(group_type_mapping)), cohorts_(std::move(cohorts)) {
  for (json& flag : flags) {
    if (flag.value("deleted", false)) continue;
    const size_t index = flags_.size();
    by_key_[flag.value("key", "")] = index;
    by_id_[flag.value("id", int64_t{0})] = index;
    flags_.push_back(std::move(flag));
  }
}

const json* FlagMatcher::FindFlag(const json& id_or_key) const {
  if (id_or_key.is_number_integer()) {
    auto it = by_id_.find(id_or_key.get<int64_t>());
    return it == by_id_.end() ? nullptr : &flags_[it->second];
  }
  const std::string s = Str(id_or_key);
  auto key_it = by_key_.find(s);
  if (key_it != by_key_.end()) return &flags_[key_it->second];
  int64_t id = 0;
  if (absl::SimpleAtoi(s, &id)) {
    auto it = by_id_.find(id);
    if (it != by_id_.end()) return &flags_[it->second];
  }
  return nullptr;
}

bool FlagMatcher::MatchCohort(int64_t id, const json& properties,
                              const std::vector<std::string>& distinct_ids) const {
  FlagEvaluationInput input;
  input.person_distinct_ids = distinct_ids;
  input.person_properties = properties;
  Evaluation ev{&input, {}, {}};
  json filter = {{"type", "cohort"}, {"key", "id"}, {"value", id}};
  return MatchFilter(filter, properties, ev, 0);
}

bool FlagMatcher::MatchGroup(const json& group, const json& properties, Evaluation& ev,
                             int depth) const {
  if (!group.is_object() || !group.contains("values")) return true;
  const json& values = group["values"];
  if (!values.is_array() || values.empty()) return true;
  const bool is_and = group.value("type", "AND") == "AND";
  for (const json& value : values) {
    bool m = value.contains("values") ? MatchGroup(value, properties, ev, depth + 1)
                                      : MatchFilter(value, properties, ev, depth + 1);
    if (is_and && !m) return false;
    if (!is_and && m) return true;
  }
  return is_and;
}

bool FlagMatcher::MatchFilter(const json& filter, const json& properties, Evaluation& ev,
                              int depth) const {
  if (depth > kMaxDepth) return false;
  const std::string type = filter.value("type", "person");
  bool match = false;
  if (type == "cohort") {
    int64_t id = 0;
    const json& v = filter.contains("value") ? filter["value"] : json();
    if (v.is_number_integer()) {
      id = v.get<int64_t>();
    } else if (!absl::SimpleAtoi(Str(v), &id)) {
      return false;
    }
    auto it = cohorts_.find(id);
    if (it == cohorts_.end()) {
      match = false;
    } else if (it->second.is_static) {
      for (const std::string& d : ev.input->person_distinct_ids) {
        match = match || it->second.distinct_ids.contains(d);
      }
      match = match || it->second.distinct_ids.contains(ev.input->distinct_id);
    } else {
      match = MatchGroup(it->second.properties, ev.input->person_properties, ev, depth + 1);
    }
    if (filter.value("operator", "in") == "not_in") match = !match;
  } else if (type == "flag") {
    const json* dep = FindFlag(filter.contains("key") ? filter["key"] : json());
    if (dep == nullptr || filter.value("operator", "") != "flag_evaluates_to") {
      return false;
    }
    const std::string dep_key = dep->value("key", "");
    if (ev.in_progress.contains(dep_key)) return false;  // cycle
    auto done = ev.done.find(dep_key);
    FlagResult result;
    if (done != ev.done.end()) {
      result = done->second;
    } else {
      result = EvaluateFlag(*dep, ev);
    }
    const json& expected = filter.contains("value") ? filter["value"] : json();
    if (expected.is_boolean()) {
      match = result.enabled == expected.get<bool>();
    } else if (expected.is_string()) {
      match = result.variant.has_value() && *result.variant == expected.get<std::string>();
    }
  } else {
    match = MatchProperty(filter, properties);
  }
  return filter.value("negation", false) ? !match : match;
}

FlagResult FlagMatcher::EvaluateFlag(const json& flag, Evaluation& ev) const {
  const FlagEvaluationInput& input = *ev.input;
  FlagResult r;
  r.key = flag.value("key", "");
  r.id = flag.value("id", int64_t{0});
  r.version = flag.value("version", int64_t{1});
  r.description =
      flag.contains("name") && flag["name"].is_string() ? flag["name"].get<std::string>() : "";
  r.has_experiment = flag.value("has_experiment", false);
  ev.in_progress.insert(r.key);
  auto finish = [&](FlagResult result) {
    ev.in_progress.erase(result.key);
    ev.done[result.key] = result;
    return result;
  };

  const json filters =
      flag.contains("filters") && flag["filters"].is_object() ? flag["filters"] : json::object();
  if (!flag.value("active", true)) {
    r.reason_code = "flag_disabled";
    r.reason_description = "Feature flag is disabled";
    return finish(r);
  }

  // Person or group subject, its properties and its bucketing value.
  auto group_subject = [&](const json& index, std::string* key, json* props) -> bool {
    const std::string idx = index.is_number() ? std::to_string(index.get<int>()) : Str(index);
    auto name = group_type_mapping_.find(idx);
    if (name == group_type_mapping_.end()) return false;
    const std::string type = name->get<std::string>();
    auto g = input.groups.find(type);
    if (g == input.groups.end() || Str(*g).empty()) return false;
    *key = Str(*g);
    *props = json::object();
    auto gp = input.group_properties.find(type);
    if (gp != input.group_properties.end() && gp->is_object()) *props = *gp;
    (*props)["$group_key"] = *key;
    return true;
  };

  std::string bucketing = input.distinct_id;
  const std::string bucketing_identifier =
      filters.value("bucketing_identifier", flag.value("bucketing_identifier", ""));
  if (bucketing_identifier == "device_id" && !input.device_id.empty()) {
    bucketing = input.device_id;
  }
  json subject_props = input.person_properties;
  const json flag_group_index = filters.contains("aggregation_group_type_index")
                                    ? filters["aggregation_group_type_index"]
                                    : json();
  if (!flag_group_index.is_null()) {
    if (!group_subject(flag_group_index, &bucketing, &subject_props)) {
      r.reason_code = "no_group_type";
      r.reason_description = "No group type";
      return finish(r);
    }
  }

  const json empty_variants = json::array();
  const json& variants = filters.contains("multivariate") && filters["multivariate"].is_object() &&
                                 filters["multivariate"].contains("variants")
                             ? filters["multivariate"]["variants"]
                             : empty_variants;
  auto pick_variant = [&](const json& condition,
                          const std::string& bucket) -> std::optional<std::string> {
    if (variants.empty()) return std::nullopt;
    if (condition.is_object() && condition.contains("variant") &&
        condition["variant"].is_string()) {
      const std::string override_key = condition["variant"].get<std::string>();
      for (const json& v : variants) {
        if (v.value("key", "") == override_key) return override_key;
      }
    }
    const double h = Hash(r.key + ".", bucket, "variant");
    double min = 0;
    for (const json& v : variants) {
      const double max = min + v.value("rollout_percentage", 0.0) / 100.0;
      if (h >= min && h < max) return v.value("key", "");
      min = max;
    }
    return std::nullopt;
  };
  auto set_payload = [&](FlagResult& out) {
    if (!out.enabled || !filters.contains("payloads") || !filters["payloads"].is_object()) {
      return;
    }
    const std::string lookup = out.variant.has_value() ? *out.variant : "true";
    auto p = filters["payloads"].find(lookup);
    if (p != filters["payloads"].end() && !p->is_null()) out.payload = *p;
  };

  // Feature enrollment (early access), then holdouts: server order.
  if (filters.value("feature_enrollment", false)) {
    auto e = input.person_properties.find("$feature_enrollment/" + r.key);
    if (e != input.person_properties.end()) {
      r.reason_code = "super_condition_value";
      r.reason_description = "Super condition value";
      r.condition_index = 0;
      r.enabled = (e->is_boolean() && e->get<bool>()) ||
                  (e->is_string() && e->get<std::string>() == "true");
      if (r.enabled) {
        r.variant = pick_variant(json(), bucketing);
        set_payload(r);
      }
      return finish(r);
    }
  }
  json holdout;
  if (filters.contains("holdout") && filters["holdout"].is_object()) {
    holdout = filters["holdout"];
  } else if (filters.contains("holdout_groups") && filters["holdout_groups"].is_array() &&
             !filters["holdout_groups"].empty()) {
    const json& g = filters["holdout_groups"][0];
    holdout = {{"exclusion_percentage", g.value("rollout_percentage", 0.0)}};
    if (g.contains("variant") && g["variant"].is_string()) {
      holdout["variant"] = g["variant"];
    }
  }
  if (holdout.is_object()) {
    const double pct = holdout.value("exclusion_percentage", 0.0);
    if (Hash("holdout-", bucketing, "") <= pct / 100.0 && pct > 0) {
      r.enabled = true;
      r.variant = holdout.contains("variant")
                      ? holdout["variant"].get<std::string>()
                      : absl::StrCat("holdout-", holdout.value("id", int64_t{0}));
      r.reason_code = "holdout_condition_value";
      r.reason_description = "Holdout condition value";
      return finish(r);
    }
  }

  // Release conditions in order; the first match wins. Otherwise report the
  // highest-priority reason seen (out of rollout beats no match).
  const json conditions = filters.contains("groups") && filters["groups"].is_array()
                              ? filters["groups"]
                              : json::array();
  bool saw_out_of_rollout = false;
  int out_of_rollout_index = 0;
  for (size_t i = 0; i < conditions.size(); ++i) {
    const json& condition = conditions[i];
    std::string cond_bucketing = bucketing;
    json cond_props = subject_props;
    if (condition.contains("aggregation_group_type_index") &&
        !condition["aggregation_group_type_index"].is_null() &&
        condition["aggregation_group_type_index"] != flag_group_index) {
      if (!group_subject(condition["aggregation_group_type_index"], &cond_bucketing, &cond_props)) {
        continue;
      }
    }
    bool props_match = true;
    if (condition.contains("properties") && condition["properties"].is_array()) {
      for (const json& filter : condition["properties"]) {
        if (!MatchFilter(filter, cond_props, ev, 0)) {
          props_match = false;
          break;
        }
      }
    }
    if (!props_match) continue;
    const json& rollout =
        condition.contains("rollout_percentage") ? condition["rollout_percentage"] : json();
    bool in_rollout = true;
    if (!rollout.is_null()) {
      in_rollout = Hash(r.key + ".", cond_bucketing, "") <= rollout.get<double>() / 100.0;
    }
    if (!in_rollout) {
      if (!saw_out_of_rollout) out_of_rollout_index = static_cast<int>(i);
      saw_out_of_rollout = true;
      if (filters.value("early_exit", false)) break;
      continue;
    }
    r.enabled = true;
    r.variant = pick_variant(condition, cond_bucketing);
    r.reason_code = "condition_match";
    r.condition_index = static_cast<int>(i);
    r.reason_description = absl::StrCat("Matched condition set ", i + 1);
    set_payload(r);
    return finish(r);
  }
  if (saw_out_of_rollout) {
    r.reason_code = "out_of_rollout_bound";
    r.reason_description = "Out of rollout bound";
    r.condition_index = out_of_rollout_index;
  } else {
    r.reason_code = "no_condition_match";
    r.reason_description = "No matching condition set";
    r.condition_index = 0;
  }
  return finish(r);
}

std::vector<FlagResult> FlagMatcher::EvaluateAll(const FlagEvaluationInput& input,
                                                 const std::vector<std::string>& only_keys) const {
  Evaluation ev{&input, {}, {}};
  std::vector<FlagResult> out;
  for (const json& flag : flags_) {
    const std::string key = flag.value("key", "");
    if (!only_keys.empty() &&
        std::find(only_keys.begin(), only_keys.end(), key) == only_keys.end()) {
      continue;
    }
    auto done = ev.done.find(key);
    out.push_back(done != ev.done.end() ? done->second : EvaluateFlag(flag, ev));
  }
  return out;
}

std::optional<FlagResult> FlagMatcher::Evaluate(absl::string_view key,
                                                const FlagEvaluationInput& input) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  Evaluation ev{&input, {}, {}};
  return EvaluateFlag(flags_[it->second], ev);
}

}  // namespace posthog_emulator
