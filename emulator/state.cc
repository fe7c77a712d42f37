#include "emulator/state.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace posthog_emulator {

using nlohmann::json;

EmulatorState::EmulatorState(Clock* clock) : rate_limiter_(clock) {
  directory_ = *Directory::FromSeed(json::object());
}

std::shared_ptr<const Directory> EmulatorState::directory() const {
  absl::MutexLock lock(&mu_);
  return directory_;
}

void EmulatorState::ForceRateLimits(std::optional<bool> enabled) {
  json seed;
  {
    absl::MutexLock lock(&mu_);
    forced_rate_limits_ = enabled;
    seed = seed_;
  }
  ApplyRateLimits(seed);
}

void EmulatorState::ApplyRateLimits(const json& seed) {
  RateLimitConfig config = RateLimitConfig::FromJson(
      seed.is_object() ? seed.value("rate_limits", json::object()) : json::object(),
      RateLimitConfig());
  {
    absl::MutexLock lock(&mu_);
    if (forced_rate_limits_.has_value()) config.enabled = *forced_rate_limits_;
  }
  rate_limiter_.Configure(config);
}

absl::Status EmulatorState::ApplyProjectData(const Directory& directory, const json& seed) {
  for (const json& p : seed.value("projects", json::array())) {
    const int64_t team_id = p.value("id", int64_t{0});
    const Project* project = directory.ProjectById(team_id);
    if (project == nullptr) continue;
    persons_.SetGroupTypes(team_id, project->group_types);
    for (const json& person : p.value("persons", json::array())) {
      std::vector<std::string> ids;
      for (const json& d : person.value("distinct_ids", json::array())) {
        ids.push_back(d.is_string() ? d.get<std::string>() : d.dump());
      }
      persons_.AddPerson(team_id, std::move(ids), person.value("properties", json::object()),
                         person.value("uuid", ""),
                         person.value("created_at", "2024-01-01T00:00:00Z"),
                         person.value("is_identified", true));
    }
    for (const json& cohort : p.value("cohorts", json::array())) {
      RETURN_IF_ERROR(flags_.AddCohort(team_id, cohort));
    }
    for (const json& flag : p.value("feature_flags", json::array())) {
      RETURN_IF_ERROR(flags_.AddSeedFlag(team_id, flag));
    }
    const int64_t generate = p.value("generate_persons", int64_t{0});
    if (generate > 0) persons_.GeneratePersons(team_id, generate);
    const int64_t generate_flags = p.value("generate_flags", int64_t{0});
    if (generate_flags > 0) flags_.GenerateFlags(team_id, generate_flags);
    const int64_t generate_groups = p.value("generate_groups", int64_t{0});
    if (generate_groups > 0) {
      persons_.GenerateGroups(team_id, p.value("group_type_index", 0), generate_groups);
    }
  }
  return absl::OkStatus();
}

absl::Status EmulatorState::LoadSeed(const json& seed) {
  if (!seed.is_object()) return absl::InvalidArgumentError("seed: not an object");
  std::shared_ptr<const Directory> directory;
  try {
    ASSIGN_OR_RETURN(directory, Directory::FromSeed(seed));
    events_.Clear();
    persons_.Clear();
    flags_.Clear();
    requests_.Clear();
    {
      absl::MutexLock lock(&mu_);
      directory_ = directory;
      seed_ = seed;
    }
    RETURN_IF_ERROR(ApplyProjectData(*directory, seed));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("seed: ", e.what()));
  }
  ApplyRateLimits(seed);
  if (seed.contains("faults")) RETURN_IF_ERROR(faults_.Configure(seed["faults"]));
  return absl::OkStatus();
}

absl::Status EmulatorState::AddSeed(const json& seed) {
  if (!seed.is_object()) return absl::InvalidArgumentError("seed: not an object");
  try {
    std::shared_ptr<const Directory> merged;
    ASSIGN_OR_RETURN(merged, directory()->Merged(seed));
    {
      absl::MutexLock lock(&mu_);
      directory_ = merged;
    }
    RETURN_IF_ERROR(ApplyProjectData(*merged, seed));
    const int64_t generate = seed.value("generate_persons", int64_t{0});
    const int64_t generate_flags = seed.value("generate_flags", int64_t{0});
    const int64_t generate_groups = seed.value("generate_groups", int64_t{0});
    if (generate > 0 || generate_flags > 0 || generate_groups > 0) {
      int64_t team_id = seed.value("project_id", int64_t{0});
      if (team_id == 0) {
        auto projects = merged->Projects();
        if (projects.empty()) {
          return absl::InvalidArgumentError("seed: no project to generate into");
        }
        team_id = projects[0]->id;
      }
      if (merged->ProjectById(team_id) == nullptr) {
        return absl::NotFoundError("seed: unknown project_id");
      }
      if (generate > 0) persons_.GeneratePersons(team_id, generate);
      if (generate_flags > 0) flags_.GenerateFlags(team_id, generate_flags);
      if (generate_groups > 0) {
        persons_.GenerateGroups(team_id, seed.value("group_type_index", 0), generate_groups);
      }
    }
    if (seed.contains("rate_limits")) ApplyRateLimits(seed);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("seed: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status EmulatorState::Reset() {
  json seed;
  {
    absl::MutexLock lock(&mu_);
    seed = seed_;
  }
  json faults = faults_.Config();
  RETURN_IF_ERROR(LoadSeed(seed.is_null() ? json::object() : seed));
  return faults_.Configure(faults);
}

}  // namespace posthog_emulator
