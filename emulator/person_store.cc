#include "emulator/person_store.h"

#include <openssl/sha.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

constexpr size_t kMaxGroupTypes = 5;

const json* Member(const json& obj, const char* name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

std::string StrMember(const json& obj, const char* name) {
  const json* v = Member(obj, name);
  if (v == nullptr || v->is_null()) return "";
  return v->is_string() ? v->get<std::string>() : v->dump();
}

void ApplySet(Person& person, const json* set, bool once) {
  if (set == nullptr || !set->is_object()) return;
  for (auto it = set->begin(); it != set->end(); ++it) {
    if (once && person.properties.contains(it.key())) continue;
    person.properties[it.key()] = *it;
  }
}

void ApplyUnset(Person& person, const json* unset) {
  if (unset == nullptr) return;
  if (unset->is_array()) {
    for (const json& k : *unset) {
      if (k.is_string()) person.properties.erase(k.get<std::string>());
    }
  } else if (unset->is_object()) {
    for (auto it = unset->begin(); it != unset->end(); ++it) {
      person.properties.erase(it.key());
    }
  } else if (unset->is_string()) {
    person.properties.erase(unset->get<std::string>());
  }
}

}  // namespace

std::string NowIso() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
}

std::string PersonUuid(int64_t team_id, const std::string& distinct_id) {
  const std::string input = absl::StrCat("posthog-emulator:", team_id, ":", distinct_id);
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), d);
  d[6] = (d[6] & 0x0f) | 0x50;  // version 5
  d[8] = (d[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11],
                         d[12], d[13], d[14], d[15]);
}

Person* PersonStore::Find(Team& team, const std::string& distinct_id) {
  auto it = team.by_distinct_id.find(distinct_id);
  if (it == team.by_distinct_id.end()) return nullptr;
  return &team.persons.at(it->second);
}

Person& PersonStore::Create(int64_t team_id, Team& team, const std::string& distinct_id,
                            const std::string& created_at) {
  const int64_t id = next_person_id_++;
  Person& person = team.persons[id];
  person.id = id;
  person.uuid = PersonUuid(team_id, distinct_id);
  person.distinct_ids.push_back(distinct_id);
  person.created_at = created_at.empty() ? NowIso() : created_at;
  team.order.push_back(id);
  team.by_distinct_id[distinct_id] = id;
  team.by_uuid[person.uuid] = id;
  return person;
}

void PersonStore::Remove(Team& team, int64_t id) {
  auto it = team.persons.find(id);
  if (it == team.persons.end()) return;
  for (const std::string& d : it->second.distinct_ids) {
    team.by_distinct_id.erase(d);
  }
  team.by_uuid.erase(it->second.uuid);
  auto pos = std::lower_bound(team.order.begin(), team.order.end(), id);
  if (pos != team.order.end() && *pos == id) team.order.erase(pos);
  team.persons.erase(it);
}

void PersonStore::Merge(int64_t team_id, Team& team, const std::string& other,
                        const std::string& into, const std::string& timestamp) {
  if (other.empty() || into.empty() || other == into) return;
  Person* other_person = Find(team, other);
  Person* into_person = Find(team, into);
  if (other_person != nullptr && into_person == nullptr) {
    other_person->distinct_ids.push_back(into);
    team.by_distinct_id[into] = other_person->id;
    other_person->is_identified = true;
    return;
  }
  if (other_person == nullptr && into_person != nullptr) {
    into_person->distinct_ids.push_back(other);
    team.by_distinct_id[other] = into_person->id;
    into_person->is_identified = true;
    return;
  }
  if (other_person == nullptr && into_person == nullptr) {
    Person& person = Create(team_id, team, into, timestamp);
    person.distinct_ids.push_back(other);
    team.by_distinct_id[other] = person.id;
    person.is_identified = true;
    return;
  }
  if (other_person->id == into_person->id) {
    into_person->is_identified = true;
    return;
  }
  // PostHog refuses to merge away a person that is already identified.
  if (other_person->is_identified) {
    into_person->is_identified = true;
    return;
  }
  json properties = other_person->properties;
  for (auto it = into_person->properties.begin(); it != into_person->properties.end(); ++it) {
    properties[it.key()] = *it;
  }
  into_person->properties = std::move(properties);
  into_person->created_at = std::min(into_person->created_at, other_person->created_at);
  const std::vector<std::string> moved = other_person->distinct_ids;
  const int64_t into_id = into_person->id;
  Remove(team, other_person->id);
  Person& target = team.persons.at(into_id);
  for (const std::string& d : moved) {
    target.distinct_ids.push_back(d);
    team.by_distinct_id[d] = into_id;
  }
  target.is_identified = true;
}

void PersonStore::ProcessEvent(int64_t team_id, Team& team, const json& event,
                               const std::string& distinct_id) {
  const std::string name = StrMember(event, "event");
  const json* properties = Member(event, "properties");
  const std::string timestamp = StrMember(event, "timestamp");
  static const json kEmpty = json::object();
  const json& props = properties != nullptr && properties->is_object() ? *properties : kEmpty;

  if (name == "$groupidentify") {
    const std::string type = StrMember(props, "$group_type");
    const std::string key = StrMember(props, "$group_key");
    if (type.empty() || key.empty()) return;
    auto it = std::find(team.group_types.begin(), team.group_types.end(), type);
    int index = static_cast<int>(it - team.group_types.begin());
    if (it == team.group_types.end()) {
      if (team.group_types.size() >= kMaxGroupTypes) return;
      team.group_types.push_back(type);
    }
    auto found = team.groups.find({index, key});
    Group& group = found != team.groups.end()
                       ? found->second
                       : NewGroup(team, index, key, timestamp.empty() ? NowIso() : timestamp);
    const json* set = Member(props, "$group_set");
    if (set != nullptr && set->is_object()) {
      for (auto s = set->begin(); s != set->end(); ++s) {
        group.properties[s.key()] = *s;
      }
    }
    return;
  }
  const json* process = Member(props, "$process_person_profile");
  if (process != nullptr && process->is_boolean() && !process->get<bool>()) {
    return;
  }
  if (distinct_id.empty()) return;

  if (name == "$identify") {
    Merge(team_id, team, StrMember(props, "$anon_distinct_id"), distinct_id, timestamp);
  } else if (name == "$create_alias") {
    Merge(team_id, team, StrMember(props, "alias"), distinct_id, timestamp);
  }
  Person* person = Find(team, distinct_id);
  if (person == nullptr) person = &Create(team_id, team, distinct_id, timestamp);
  if (name == "$identify" || name == "$create_alias") person->is_identified = true;
  ApplySet(*person, Member(props, "$set_once"), /*once=*/true);
  ApplySet(*person, Member(event, "$set_once"), /*once=*/true);
  ApplySet(*person, Member(props, "$set"), /*once=*/false);
  ApplySet(*person, Member(event, "$set"), /*once=*/false);
  ApplyUnset(*person, Member(props, "$unset"));
  ApplyUnset(*person, Member(event, "$unset"));
  if (name == "$delete_person_property") {
    ApplyUnset(*person, Member(props, "$unset"));
  }
}

void PersonStore::ProcessEvents(int64_t team_id, const std::vector<PersonEvent>& events) {
  absl::MutexLock lock(&mu_);
  Team& team = teams_[team_id];
  for (const PersonEvent& e : events) {
    if (e.event != nullptr) {
      ProcessEvent(team_id, team, *e.event, std::string(e.distinct_id));
    } else if (!e.distinct_id.empty() && !team.by_distinct_id.contains(e.distinct_id)) {
      Create(team_id, team, std::string(e.distinct_id), std::string(e.timestamp));
    }
  }
}

int64_t PersonStore::AddPerson(int64_t team_id, std::vector<std::string> distinct_ids,
                               json properties, std::string uuid, std::string created_at,
                               bool is_identified) {
  absl::MutexLock lock(&mu_);
  Team& team = teams_[team_id];
  distinct_ids.erase(std::remove_if(distinct_ids.begin(), distinct_ids.end(),
                                    [&](const std::string& d) {
                                      return d.empty() || team.by_distinct_id.contains(d);
                                    }),
                     distinct_ids.end());
  if (distinct_ids.empty()) return 0;
  Person& person = Create(team_id, team, distinct_ids[0], created_at);
  if (!uuid.empty()) {
    team.by_uuid.erase(person.uuid);
    person.uuid = uuid;
    team.by_uuid[uuid] = person.id;
  }
  for (size_t i = 1; i < distinct_ids.size(); ++i) {
    person.distinct_ids.push_back(distinct_ids[i]);
    team.by_distinct_id[distinct_ids[i]] = person.id;
  }
  if (properties.is_object()) person.properties = std::move(properties);
  person.is_identified = is_identified;
  return person.id;
}

void PersonStore::GeneratePersons(int64_t team_id, size_t n) {
  absl::MutexLock lock(&mu_);
  Team& team = teams_[team_id];
  const std::string now = NowIso();
  team.order.reserve(team.order.size() + n);
  static const char* kPlans[] = {"free", "pro", "enterprise"};
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = generated_++;
    const std::string distinct_id = absl::StrCat("generated-", k);
    if (team.by_distinct_id.contains(distinct_id)) continue;
    Person& person = Create(team_id, team, distinct_id, now);
    person.properties = {{"email", absl::StrCat("user", k, "@example.com")},
                         {"name", absl::StrCat("User ", k)},
                         {"plan", kPlans[k % 3]},
                         {"index", k}};
    person.is_identified = true;
  }
}

std::vector<Person> PersonStore::List(int64_t team_id, const PersonListQuery& query) const {
  absl::MutexLock lock(&mu_);
  std::vector<Person> out;
  auto team_it = teams_.find(team_id);
  if (team_it == teams_.end()) return out;
  const Team& team = team_it->second;
  auto matches = [&](const Person& p) {
    if (!query.email.empty()) {
      auto e = p.properties.find("email");
      if (e == p.properties.end() || !e->is_string() || e->get<std::string>() != query.email) {
        return false;
      }
    }
    return !query.predicate || query.predicate(p);
  };
  if (!query.distinct_id.empty()) {
    auto it = team.by_distinct_id.find(query.distinct_id);
    if (it != team.by_distinct_id.end() && query.offset == 0 && query.limit > 0) {
      const Person& p = team.persons.at(it->second);
      if (matches(p)) out.push_back(p);
    }
    return out;
  }
  if (query.email.empty() && !query.predicate) {
    for (size_t i = query.offset; i < team.order.size() && out.size() < query.limit; ++i) {
      out.push_back(team.persons.at(team.order[i]));
    }
    return out;
  }
  size_t skipped = 0;
  for (int64_t id : team.order) {
    const Person& p = team.persons.at(id);
    if (!matches(p)) continue;
    if (skipped++ < query.offset) continue;
    out.push_back(p);
    if (out.size() >= query.limit) break;
  }
  return out;
}

std::optional<Person> PersonStore::GetById(int64_t team_id, int64_t id) const {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.persons.find(id);
  if (it == t->second.persons.end()) return std::nullopt;
  return it->second;
}

std::optional<Person> PersonStore::GetByUuid(int64_t team_id, const std::string& uuid) const {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.by_uuid.find(uuid);
  if (it == t->second.by_uuid.end()) return std::nullopt;
  return t->second.persons.at(it->second);
}

std::optional<Person> PersonStore::GetByDistinctId(int64_t team_id,
                                                   const std::string& distinct_id) const {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.by_distinct_id.find(distinct_id);
  if (it == t->second.by_distinct_id.end()) return std::nullopt;
  return t->second.persons.at(it->second);
}

std::optional<Person> PersonStore::Delete(int64_t team_id, int64_t id) {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.persons.find(id);
  if (it == t->second.persons.end()) return std::nullopt;
  Person person = it->second;
  Remove(t->second, id);
  return person;
}

bool PersonStore::SetProperty(int64_t team_id, int64_t id, const std::string& key,
                              const json& value) {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return false;
  auto it = t->second.persons.find(id);
  if (it == t->second.persons.end()) return false;
  it->second.properties[key] = value;
  return true;
}

bool PersonStore::UnsetProperty(int64_t team_id, int64_t id, const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return false;
  auto it = t->second.persons.find(id);
  if (it == t->second.persons.end()) return false;
  it->second.properties.erase(key);
  return true;
}

void PersonStore::SetGroupTypes(int64_t team_id, const std::vector<std::string>& types) {
  absl::MutexLock lock(&mu_);
  Team& team = teams_[team_id];
  for (const std::string& type : types) {
    if (std::find(team.group_types.begin(), team.group_types.end(), type) ==
            team.group_types.end() &&
        team.group_types.size() < kMaxGroupTypes) {
      team.group_types.push_back(type);
    }
  }
}

std::vector<std::string> PersonStore::GroupTypes(int64_t team_id) const {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  return t == teams_.end() ? std::vector<std::string>{} : t->second.group_types;
}

std::optional<Group> PersonStore::GetGroup(int64_t team_id, int index,
                                           const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.groups.find({index, key});
  if (it == t->second.groups.end()) return std::nullopt;
  return it->second;
}

Group& PersonStore::NewGroup(Team& team, int index, const std::string& key,
                             const std::string& created_at) {
  Group& group = team.groups[{index, key}];
  group.group_type_index = index;
  group.group_key = key;
  group.created_at = created_at;
  group.sequence = ++group_sequence_;
  team.group_order.emplace(created_at, group.sequence, index, key);
  return group;
}

std::vector<Group> PersonStore::ListGroups(int64_t team_id, const GroupListQuery& query) const {
  absl::MutexLock lock(&mu_);
  std::vector<Group> out;
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return out;
  const Team& team = t->second;
  auto it = team.group_order.begin();
  if (query.after.has_value()) {
    // Past every entry at or before the position (the set is descending).
    it = team.group_order.upper_bound(std::make_tuple(
        query.after->first, query.after->second, std::numeric_limits<int>::min(), std::string()));
  }
  for (; it != team.group_order.end() && out.size() < query.limit; ++it) {
    const auto& [created_at, sequence, index, key] = *it;
    if (index != query.group_type_index) continue;
    const std::string lower_key = absl::AsciiStrToLower(key);
    if (!query.key_contains.empty() && !absl::StrContains(lower_key, query.key_contains)) continue;
    const Group& group = team.groups.at({index, key});
    if (query.has_search && lower_key != query.search &&
        !absl::StrContains(absl::AsciiStrToLower(group.properties.dump()), query.search)) {
      continue;
    }
    out.push_back(group);
  }
  return out;
}

std::optional<Group> PersonStore::CreateGroup(int64_t team_id, int index, const std::string& key,
                                              json properties) {
  absl::MutexLock lock(&mu_);
  Team& team = teams_[team_id];
  if (team.groups.count({index, key}) > 0) return std::nullopt;
  Group& group = NewGroup(team, index, key, NowIso());
  group.properties = std::move(properties);
  return group;
}

std::optional<Group> PersonStore::SetGroupProperty(int64_t team_id, int index,
                                                   const std::string& key,
                                                   const std::string& property, const json& value) {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.groups.find({index, key});
  if (it == t->second.groups.end()) return std::nullopt;
  it->second.properties[property] = value;
  return it->second;
}

std::optional<Group> PersonStore::UnsetGroupProperty(int64_t team_id, int index,
                                                     const std::string& key,
                                                     const std::string& property) {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  if (t == teams_.end()) return std::nullopt;
  auto it = t->second.groups.find({index, key});
  if (it == t->second.groups.end()) return std::nullopt;
  it->second.properties.erase(property);
  return it->second;
}

void PersonStore::GenerateGroups(int64_t team_id, int index, size_t n) {
  absl::MutexLock lock(&mu_);
  Team& team = teams_[team_id];
  static const char* kPlans[] = {"free", "pro", "enterprise"};
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = generated_groups_++;
    const std::string key = absl::StrCat("generated-group-", k);
    if (team.groups.count({index, key}) > 0) continue;
    const std::string created_at =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ",
                         start + absl::Microseconds(static_cast<int64_t>(i)), absl::UTCTimeZone());
    Group& group = NewGroup(team, index, key, created_at);
    group.properties = {
        {"name", absl::StrCat("Company ", k)}, {"plan", kPlans[k % 3]}, {"index", k}};
  }
}

size_t PersonStore::PersonCount(int64_t team_id) const {
  absl::MutexLock lock(&mu_);
  auto t = teams_.find(team_id);
  return t == teams_.end() ? 0 : t->second.persons.size();
}

void PersonStore::Clear() {
  absl::MutexLock lock(&mu_);
  teams_.clear();
  next_person_id_ = 1;
  generated_ = 0;
  group_sequence_ = 0;
  generated_groups_ = 0;
}

}  // namespace posthog_emulator
