#ifndef EMULATOR_PERSON_STORE_H_
#define EMULATOR_PERSON_STORE_H_

// PersonStore: persons and groups per project, derived from captured events
// the way PostHog's ingestion does it (docs/posthog-api.md §1.8):
//   * a distinct_id creates a person (unless `$process_person_profile` is
//     false; `$groupidentify` events create none);
//   * `$set`, `$set_once` and `$unset`, at the top level or in properties,
//     update the person;
//   * `$identify` with `$anon_distinct_id`, and `$create_alias` with
//     `alias`, merge the two distinct_ids into one person (the identified
//     user's properties win; a person already identified is never merged
//     away) and mark the person identified;
//   * `$groupidentify` upserts the group (`$group_set`) and registers new
//     group types (at most 5 per project).
// Updates apply synchronously, so a read after a capture sees them.
//
// Thread-safe: one absl::Mutex guards everything; a capture batch takes it
// once. Listing without filters is O(limit) per page (persons are kept in id
// order with a position index).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

struct Person {
  int64_t id = 0;
  std::string uuid;
  std::vector<std::string> distinct_ids;
  nlohmann::json properties = nlohmann::json::object();
  std::string created_at;
  bool is_identified = false;
};

struct Group {
  int group_type_index = 0;
  std::string group_key;
  nlohmann::json properties = nlohmann::json::object();
  std::string created_at;
  // Insertion order within the project: breaks ties of created_at.
  int64_t sequence = 0;
};

// GroupListQuery selects groups of one type for one page of the cursor
// list: newest first (created_at, then sequence, descending).
struct GroupListQuery {
  int group_type_index = 0;
  // Lower-case substring of the key; empty matches all.
  std::string key_contains;
  // With has_search: lower-case substring of the properties' JSON, or the
  // exact key (case-insensitive), as PostHog's `search`.
  std::string search;
  bool has_search = false;
  // Only groups after this (created_at, sequence) position.
  std::optional<std::pair<std::string, int64_t>> after;
  size_t limit = 100;
};

// PersonEvent is one captured event for ProcessEvents: the parsed event and
// its normalized distinct_id (which may come from properties.distinct_id).
// `event` is null for a plain event (one with no person-affecting name or
// key, see capture_handler.cc): it only ensures a person for `distinct_id`,
// created at `timestamp` (the event's timestamp string, or empty for now).
struct PersonEvent {
  const nlohmann::json* event;
  absl::string_view distinct_id;
  absl::string_view timestamp = {};
};

// PersonListQuery selects persons; empty fields match all.
struct PersonListQuery {
  std::string distinct_id;                       // exact
  std::string email;                             // exact, on properties.email
  std::function<bool(const Person&)> predicate;  // search, properties, cohort
  size_t offset = 0;
  size_t limit = 100;
};

class PersonStore final {
 public:
  PersonStore() = default;
  PersonStore(const PersonStore&) = delete;
  PersonStore& operator=(const PersonStore&) = delete;

  // ProcessEvents applies the person and group side effects of `events`
  // of `team_id`, in order.
  void ProcessEvents(int64_t team_id, const std::vector<PersonEvent>& events);

  // AddPerson inserts a seeded person. A distinct_id already owned by a
  // person is skipped. Returns the new person's id.
  int64_t AddPerson(int64_t team_id, std::vector<std::string> distinct_ids,
                    nlohmann::json properties, std::string uuid, std::string created_at,
                    bool is_identified);

  // GeneratePersons creates `n` persons with distinct_ids
  // "generated-<k>" and properties {email, name, plan, index}.
  void GeneratePersons(int64_t team_id, size_t n);

  // List returns the persons matching `query`, in id order.
  std::vector<Person> List(int64_t team_id, const PersonListQuery& query) const;

  std::optional<Person> GetById(int64_t team_id, int64_t id) const;
  std::optional<Person> GetByUuid(int64_t team_id, const std::string& uuid) const;
  std::optional<Person> GetByDistinctId(int64_t team_id, const std::string& distinct_id) const;

  // Delete removes a person and returns it (its distinct_ids are then
  // free to create a new person).
  std::optional<Person> Delete(int64_t team_id, int64_t id);

  // SetProperty / UnsetProperty change one property; false if no person.
  bool SetProperty(int64_t team_id, int64_t id, const std::string& key,
                   const nlohmann::json& value);
  bool UnsetProperty(int64_t team_id, int64_t id, const std::string& key);

  // Group types by index, seeded with SetGroupTypes and extended by
  // $groupidentify.
  void SetGroupTypes(int64_t team_id, const std::vector<std::string>& types);
  std::vector<std::string> GroupTypes(int64_t team_id) const;
  std::optional<Group> GetGroup(int64_t team_id, int group_type_index,
                                const std::string& key) const;

  // ListGroups returns up to query.limit groups, newest first.
  std::vector<Group> ListGroups(int64_t team_id, const GroupListQuery& query) const;
  // CreateGroup adds a group created now; nullopt when the key is taken.
  std::optional<Group> CreateGroup(int64_t team_id, int group_type_index, const std::string& key,
                                   nlohmann::json properties);
  // SetGroupProperty / UnsetGroupProperty change one property and return
  // the group; nullopt when there is none.
  std::optional<Group> SetGroupProperty(int64_t team_id, int group_type_index,
                                        const std::string& key, const std::string& property,
                                        const nlohmann::json& value);
  std::optional<Group> UnsetGroupProperty(int64_t team_id, int group_type_index,
                                          const std::string& key, const std::string& property);
  // GenerateGroups creates `n` groups of `group_type_index` with keys
  // "generated-group-<k>", properties {name, plan, index}, each created a
  // microsecond after the previous one (so the newest is the last made).
  void GenerateGroups(int64_t team_id, int group_type_index, size_t n);

  size_t PersonCount(int64_t team_id) const;
  void Clear();

 private:
  struct Team {
    std::map<int64_t, Person> persons;
    std::vector<int64_t> order;  // ids ascending
    absl::flat_hash_map<std::string, int64_t> by_distinct_id;
    absl::flat_hash_map<std::string, int64_t> by_uuid;
    std::vector<std::string> group_types;
    std::map<std::pair<int, std::string>, Group> groups;
    // (created_at, sequence, type, key), newest first: the list's order.
    std::set<std::tuple<std::string, int64_t, int, std::string>, std::greater<>> group_order;
  };

  Person* Find(Team& team, const std::string& distinct_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Person& Create(int64_t team_id, Team& team, const std::string& distinct_id,
                 const std::string& created_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Merge(int64_t team_id, Team& team, const std::string& other, const std::string& into,
             const std::string& timestamp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Team& team, int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProcessEvent(int64_t team_id, Team& team, const nlohmann::json& event,
                    const std::string& distinct_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // NewGroup inserts a group (which must not exist) into `team`.
  Group& NewGroup(Team& team, int group_type_index, const std::string& key,
                  const std::string& created_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<int64_t, Team> teams_ ABSL_GUARDED_BY(mu_);
  int64_t next_person_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t generated_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t group_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t generated_groups_ ABSL_GUARDED_BY(mu_) = 0;
};

// PersonUuid returns the deterministic UUID (v5 layout, SHA-1 of team and
// distinct_id) the emulator gives the person first seen as `distinct_id`.
std::string PersonUuid(int64_t team_id, const std::string& distinct_id);

// NowIso returns the current UTC time as "2024-01-02T03:04:05.678000Z".
std::string NowIso();

}  // namespace posthog_emulator

#endif  // EMULATOR_PERSON_STORE_H_
