#include "emulator/event_store.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"

namespace posthog_emulator {

size_t EventStore::ShardOf(std::string_view uuid) {
  return absl::Hash<std::string_view>()(uuid) % kShards;
}

size_t EventStore::Add(std::vector<StoredEvent> events) {
  // Sequence numbers are taken up front so the batch keeps its order.
  const uint64_t first_seq = next_seq_.fetch_add(events.size());
  std::vector<std::vector<size_t>> by_shard(kShards);
  for (size_t i = 0; i < events.size(); ++i) {
    by_shard[ShardOf(events[i].uuid)].push_back(i);
  }
  size_t added = 0;
  size_t duplicates = 0;
  for (size_t s = 0; s < kShards; ++s) {
    if (by_shard[s].empty()) continue;
    Shard& shard = shards_[s];
    absl::MutexLock lock(&shard.mu);
    for (size_t i : by_shard[s]) {
      if (shard.by_uuid.contains(events[i].uuid)) {
        ++duplicates;
        continue;
      }
      shard.records.push_back(Record{first_seq + i, std::move(events[i]), false});
      const Record& record = shard.records.back();
      shard.by_uuid.emplace(record.event.uuid, shard.records.size() - 1);
      ++added;
    }
  }
  count_ += added;
  duplicates_ += duplicates;
  return duplicates;
}

std::vector<nlohmann::json> EventStore::Query(const EventQuery& query) const {
  std::vector<std::pair<uint64_t, StoredEvent>> found;
  auto matches = [&](const Record& r) {
    return !r.deleted &&
           (query.event.empty() || r.event.event == query.event) &&
           (query.distinct_id.empty() ||
            r.event.distinct_id == query.distinct_id) &&
           (query.team_id == 0 || r.event.team_id == query.team_id);
  };
  if (!query.uuid.empty()) {
    const Shard& shard = shards_[ShardOf(query.uuid)];
    absl::MutexLock lock(&shard.mu);
    auto it = shard.by_uuid.find(query.uuid);
    if (it != shard.by_uuid.end() && matches(shard.records[it->second])) {
      const Record& r = shard.records[it->second];
      found.emplace_back(r.seq, r.event);
    }
  } else {
    for (const Shard& shard : shards_) {
      absl::MutexLock lock(&shard.mu);
      for (const Record& r : shard.records) {
        if (matches(r)) found.emplace_back(r.seq, r.event);
      }
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<nlohmann::json> out;
  for (size_t i = 0; i < found.size() && i < query.limit; ++i) {
    const StoredEvent& e = found[i].second;
    nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
    if (!j.is_object()) continue;
    j["uuid"] = e.uuid;
    j["distinct_id"] = e.distinct_id;
    j["team_id"] = e.team_id;
    j.erase("api_key");
    j.erase("token");
    if (!e.generated_timestamp.empty()) j["timestamp"] = e.generated_timestamp;
    out.push_back(std::move(j));
  }
  return out;
}

size_t EventStore::DeleteForDistinctIds(
    int64_t team_id, const std::vector<std::string>& distinct_ids) {
  absl::flat_hash_set<std::string> ids(distinct_ids.begin(), distinct_ids.end());
  size_t removed = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (Record& r : shard.records) {
      if (!r.deleted && r.event.team_id == team_id &&
          ids.contains(r.event.distinct_id)) {
        r.deleted = true;
        r.event.json.clear();
        r.event.json.shrink_to_fit();
        ++removed;
      }
    }
  }
  count_ -= removed;
  return removed;
}

void EventStore::Clear() {
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    shard.by_uuid.clear();
    shard.records.clear();
  }
  count_ = 0;
  duplicates_ = 0;
}

}  // namespace posthog_emulator
