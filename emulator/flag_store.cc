#include "emulator/flag_store.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "emulator/api_errors.h"
#include "emulator/person_store.h"
#include "re2/re2.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

// Fields a client may write; everything else is read-only or computed.
const char* const kWritable[] = {"name",
                                 "key",
                                 "filters",
                                 "active",
                                 "deleted",
                                 "ensure_experience_continuity",
                                 "tags",
                                 "evaluation_tags",
                                 "evaluation_runtime",
                                 "is_remote_configuration",
                                 "has_encrypted_payloads",
                                 "rollback_conditions",
                                 "creation_context",
                                 "bucketing_identifier"};

json AuthorJson(const FlagAuthor& a) {
  return {{"id", a.id},
          {"uuid", a.uuid},
          {"distinct_id", a.distinct_id},
          {"first_name", a.first_name},
          {"last_name", a.last_name},
          {"email", a.email},
          {"is_email_verified", true},
          {"hedgehog_config", nullptr},
          {"role_at_organization", nullptr}};
}

// NewFlag is a flag with every field PostHog's FeatureFlagSerializer returns,
// at its default, before the caller's fields are merged in.
json NewFlag(int64_t id, int64_t team_id, json author, const std::string& time) {
  return {{"id", id},
          {"team_id", team_id},
          {"name", ""},
          {"filters", json::object()},
          {"deleted", false},
          {"active", true},
          {"created_by", author},
          {"created_at", time},
          {"updated_at", time},
          {"version", 1},
          {"last_modified_by", author},
          {"ensure_experience_continuity", false},
          {"experiment_set", json::array()},
          {"surveys", json::array()},
          {"features", json::array()},
          {"rollback_conditions", nullptr},
          {"performed_rollback", false},
          {"can_edit", true},
          {"tags", json::array()},
          {"evaluation_tags", json::array()},
          {"usage_dashboard", nullptr},
          {"analytics_dashboards", json::array()},
          {"has_enriched_analytics", false},
          {"user_access_level", "editor"},
          {"creation_context", "feature_flags"},
          {"is_remote_configuration", false},
          {"has_encrypted_payloads", false},
          {"status", "ACTIVE"},
          {"evaluation_runtime", "all"}};
}

// Filters as FeatureFlag.get_filters() returns them: legacy or empty
// filters become one condition with no properties and no rollout.
json NormalizedFilters(const json& stored) {
  json filters = stored.contains("filters") && stored["filters"].is_object() ? stored["filters"]
                                                                             : json::object();
  if (!filters.contains("groups")) {
    filters["groups"] = json::array(
        {{{"properties", filters.value("properties", json::array())},
          {"rollout_percentage",
           stored.contains("rollout_percentage") ? stored["rollout_percentage"] : json()}}});
    filters.erase("properties");
  }
  return filters;
}

}  // namespace

json FlagStore::Serialize(const json& stored) {
  json out = stored;
  out["filters"] = NormalizedFilters(stored);
  const json& groups = out["filters"]["groups"];
  const bool simple = groups.is_array() && groups.size() == 1 &&
                      (!groups[0].contains("properties") || groups[0]["properties"].empty()) &&
                      out["filters"].value("aggregation_group_type_index", json()).is_null() &&
                      !out["filters"].contains("multivariate");
  out["is_simple_flag"] = simple;
  out["rollout_percentage"] = simple ? groups[0].value("rollout_percentage", json()) : json();
  return out;
}

absl::Status FlagStore::Validate(int64_t team_id, const json& flag, int64_t self_id) const {
  if (!flag.contains("key") || !flag["key"].is_string() || flag["key"].get<std::string>().empty()) {
    return ValidationError("required", "This field is required.", "key");
  }
  const std::string key = flag["key"].get<std::string>();
  static const LazyRE2 kKey = {"^[a-zA-Z0-9_-]+$"};
  if (!RE2::FullMatch(key, *kKey)) {
    return ValidationError(
        "invalid_key", "Only letters, numbers, hyphens (-) & underscores (_) are allowed.", "key");
  }
  if (!flag.value("deleted", false)) {
    auto team = flags_.find(team_id);
    if (team != flags_.end()) {
      for (const auto& [id, other] : team->second) {
        if (id != self_id && !other.value("deleted", false) && other.value("key", "") == key) {
          return ValidationError("unique", "There is already a feature flag with this key.", "key");
        }
      }
    }
  }
  const json filters = flag.contains("filters") ? flag["filters"] : json();
  if (!filters.is_null() && !filters.is_object()) {
    return ValidationError("invalid_input", "Filters must be an object.", "filters");
  }
  if (filters.is_object() && filters.contains("multivariate") &&
      filters["multivariate"].is_object()) {
    double sum = 0;
    for (const json& v : filters["multivariate"].value("variants", json::array())) {
      sum += v.value("rollout_percentage", 0.0);
    }
    if (std::fabs(sum - 100.0) > 1e-9) {
      return ValidationError("invalid_input",
                             "Invalid variant definitions: Variant rollout percentages must sum "
                             "to 100.",
                             "filters");
    }
  }
  if (filters.is_object() && filters.contains("groups")) {
    for (const json& g : filters["groups"]) {
      const json r = g.value("rollout_percentage", json());
      if (!r.is_null() && (!r.is_number() || r.get<double>() < 0 || r.get<double>() > 100)) {
        return ValidationError("invalid_input", "Rollout percentage must be between 0 and 100.",
                               "filters");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> FlagStore::Create(int64_t team_id, const json& body,
                                       const FlagAuthor& author) {
  if (!body.is_object()) {
    return ValidationError("invalid_input", "Invalid data. Expected a dictionary.");
  }
  json flag = json::object();
  for (const char* field : kWritable) {
    if (body.contains(field)) flag[field] = body[field];
  }
  absl::MutexLock lock(&mu_);
  absl::Status valid = Validate(team_id, flag, 0);
  if (!valid.ok()) return valid;
  const std::string now = NowIso();
  const int64_t id = next_id_++;
  json stored = NewFlag(id, team_id, AuthorJson(author), now);
  for (auto it = flag.begin(); it != flag.end(); ++it) stored[it.key()] = *it;
  stored["filters"] = NormalizedFilters(stored);
  Store(team_id, id, stored);
  return Serialize(stored);
}

absl::StatusOr<json> FlagStore::Update(int64_t team_id, int64_t id, const json& body, bool partial,
                                       const FlagAuthor& author) {
  if (!body.is_object()) {
    return ValidationError("invalid_input", "Invalid data. Expected a dictionary.");
  }
  absl::MutexLock lock(&mu_);
  auto team = flags_.find(team_id);
  if (team == flags_.end() || team->second.find(id) == team->second.end()) {
    return NotFoundError();
  }
  json& stored = team->second[id];
  if (body.contains("version") && !body["version"].is_null() &&
      body["version"] != stored["version"]) {
    return ConflictError(
        "The feature flag was updated by someone else since you started "
        "editing. Please reload and try again.");
  }
  json updated = stored;
  for (const char* field : kWritable) {
    if (body.contains(field)) updated[field] = body[field];
  }
  if (!partial && !body.contains("key")) {
    return ValidationError("required", "This field is required.", "key");
  }
  absl::Status valid = Validate(team_id, updated, id);
  if (!valid.ok()) return valid;
  updated["filters"] = NormalizedFilters(updated);
  updated["version"] = stored.value("version", int64_t{1}) + 1;
  updated["updated_at"] = NowIso();
  updated["last_modified_by"] = AuthorJson(author);
  stored = std::move(updated);
  return Serialize(stored);
}

std::optional<json> FlagStore::Get(int64_t team_id, int64_t id) const {
  absl::MutexLock lock(&mu_);
  auto team = flags_.find(team_id);
  if (team == flags_.end()) return std::nullopt;
  auto it = team->second.find(id);
  if (it == team->second.end()) return std::nullopt;
  return Serialize(it->second);
}

void FlagStore::Store(int64_t team_id, int64_t id, json stored) {
  absl::Time created = absl::InfinitePast();
  std::string error;
  (void)absl::ParseTime(absl::RFC3339_full, stored.value("created_at", ""), &created, &error);
  created_[team_id][id] = created;
  flags_[team_id][id] = std::move(stored);
}

std::pair<std::vector<json>, size_t> FlagStore::List(int64_t team_id, size_t offset,
                                                     size_t limit) const {
  absl::MutexLock lock(&mu_);
  std::vector<json> page;
  auto team = flags_.find(team_id);
  if (team == flags_.end()) return {page, 0};
  const std::map<int64_t, absl::Time>& created = created_.at(team_id);
  // PostHog: queryset.filter(deleted=False).order_by("-created_at").
  struct Entry {
    absl::Time created;
    int64_t id;
    const json* flag;
  };
  std::vector<Entry> live;
  live.reserve(team->second.size());
  for (const auto& [id, flag] : team->second) {
    if (flag.value("deleted", false)) continue;
    live.push_back({created.at(id), id, &flag});
  }
  std::sort(live.begin(), live.end(), [](const Entry& a, const Entry& b) {
    if (a.created != b.created) return a.created > b.created;
    return a.id > b.id;
  });
  for (size_t i = offset; i < live.size() && page.size() < limit; ++i) {
    page.push_back(Serialize(*live[i].flag));
  }
  return {page, live.size()};
}

std::vector<json> FlagStore::Stored(int64_t team_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<json> out;
  auto team = flags_.find(team_id);
  if (team == flags_.end()) return out;
  for (const auto& [id, flag] : team->second) {
    json f = flag;
    f["filters"] = NormalizedFilters(flag);
    out.push_back(std::move(f));
  }
  return out;
}

absl::Status FlagStore::AddSeedFlag(int64_t team_id, const json& flag) {
  if (!flag.is_object() || !flag.contains("key")) {
    return absl::InvalidArgumentError("seed: feature flag without key");
  }
  absl::MutexLock lock(&mu_);
  int64_t id = flag.value("id", int64_t{0});
  if (id <= 0) id = next_id_;
  next_id_ = std::max(next_id_, id + 1);
  json stored = NewFlag(id, team_id, nullptr, "2024-01-01T00:00:00Z");
  for (auto it = flag.begin(); it != flag.end(); ++it) stored[it.key()] = *it;
  stored["id"] = id;
  stored["filters"] = NormalizedFilters(stored);
  Store(team_id, id, std::move(stored));
  return absl::OkStatus();
}

void FlagStore::GenerateFlags(int64_t team_id, size_t n) {
  absl::MutexLock lock(&mu_);
  const std::string now = NowIso();
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = generated_++;
    const int64_t id = next_id_++;
    json stored = NewFlag(id, team_id, nullptr, now);
    stored["key"] = absl::StrCat("generated-flag-", k);
    stored["name"] = absl::StrCat("Generated flag ", k);
    stored["filters"] = {{"groups", json::array({{{"properties", json::array()},
                                                  {"rollout_percentage", k % 101}}})}};
    Store(team_id, id, std::move(stored));
  }
}

absl::Status FlagStore::AddCohort(int64_t team_id, const json& cohort) {
  if (!cohort.is_object() || !cohort.contains("id") || !cohort["id"].is_number_integer()) {
    return absl::InvalidArgumentError("seed: cohort without integer id");
  }
  CohortDefinition def;
  def.id = cohort["id"].get<int64_t>();
  def.is_static = cohort.value("is_static", false);
  if (cohort.contains("filters") && cohort["filters"].is_object()) {
    def.properties = cohort["filters"].value("properties", json::object());
  } else {
    def.properties = cohort.value("properties", json::object());
  }
  for (const json& d : cohort.value("distinct_ids", json::array())) {
    if (d.is_string()) def.distinct_ids.insert(d.get<std::string>());
  }
  absl::MutexLock lock(&mu_);
  cohorts_[team_id][def.id] = std::move(def);
  return absl::OkStatus();
}

absl::flat_hash_map<int64_t, CohortDefinition> FlagStore::Cohorts(int64_t team_id) const {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<int64_t, CohortDefinition> out;
  auto team = cohorts_.find(team_id);
  if (team == cohorts_.end()) return out;
  for (const auto& [id, def] : team->second) out[id] = def;
  return out;
}

void FlagStore::Clear() {
  absl::MutexLock lock(&mu_);
  flags_.clear();
  created_.clear();
  cohorts_.clear();
  next_id_ = 1;
  generated_ = 0;
}

}  // namespace posthog_emulator
