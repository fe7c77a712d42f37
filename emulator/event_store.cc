#include "emulator/event_store.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace posthog_emulator {

uint64_t EventStore::HashOf(std::string_view uuid) {
  return absl::Hash<absl::string_view>()(absl::string_view(uuid.data(), uuid.size()));
}

size_t EventStore::Shard::Find(std::string_view uuid, uint64_t h) const {
  auto it = by_hash.find(h);
  // `collided` only holds uuids whose hash is in `by_hash`.
  if (it == by_hash.end()) return kNotFound;
  if (records[it->second].event.uuid == uuid) return it->second;
  auto c = collided.find(std::string(uuid));
  return c == collided.end() ? kNotFound : c->second;
}

size_t EventStore::Add(std::vector<StoredEvent> events) {
  // Sequence numbers are taken up front so the batch keeps its order.
  const uint64_t first_seq = next_seq_.fetch_add(events.size());
  std::vector<uint64_t> hashes(events.size());
  std::vector<uint32_t> count(kShards + 1, 0);
  for (size_t i = 0; i < events.size(); ++i) {
    hashes[i] = HashOf(events[i].uuid);
    ++count[ShardOf(hashes[i]) + 1];
  }
  // Counting sort of the batch by shard, keeping the batch's order within
  // each shard.
  for (size_t s = 0; s < kShards; ++s) count[s + 1] += count[s];
  std::vector<uint32_t> order(events.size());
  {
    std::vector<uint32_t> next(count.begin(), count.end() - 1);
    for (size_t i = 0; i < events.size(); ++i) {
      order[next[ShardOf(hashes[i])]++] = static_cast<uint32_t>(i);
    }
  }
  size_t added = 0;
  size_t duplicates = 0;
  for (size_t s = 0; s < kShards; ++s) {
    if (count[s] == count[s + 1]) continue;
    Shard& shard = shards_[s];
    absl::MutexLock lock(&shard.mu);
    for (uint32_t k = count[s]; k < count[s + 1]; ++k) {
      const size_t i = order[k];
      const uint64_t h = hashes[i];
      if (shard.Find(events[i].uuid, h) != kNotFound) {
        ++duplicates;
        continue;
      }
      const size_t pos = shard.records.size();
      shard.records.push_back(Record{first_seq + i, std::move(events[i]), false});
      if (!shard.by_hash.emplace(h, pos).second) {
        shard.collided.emplace(shard.records.back().event.uuid, pos);
      }
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
    return !r.deleted && (query.event.empty() || r.event.event == query.event) &&
           (query.distinct_id.empty() || r.event.distinct_id == query.distinct_id) &&
           (query.team_id == 0 || r.event.team_id == query.team_id);
  };
  if (!query.uuid.empty()) {
    const uint64_t h = HashOf(query.uuid);
    const Shard& shard = shards_[ShardOf(h)];
    absl::MutexLock lock(&shard.mu);
    const size_t pos = shard.Find(query.uuid, h);
    if (pos != kNotFound && matches(shard.records[pos])) {
      const Record& r = shard.records[pos];
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

size_t EventStore::DeleteForDistinctIds(int64_t team_id,
                                        const std::vector<std::string>& distinct_ids) {
  absl::flat_hash_set<std::string> ids(distinct_ids.begin(), distinct_ids.end());
  size_t removed = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (Record& r : shard.records) {
      if (!r.deleted && r.event.team_id == team_id && ids.contains(r.event.distinct_id)) {
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
    shard.by_hash.clear();
    shard.collided.clear();
    shard.records.clear();
  }
  count_ = 0;
  duplicates_ = 0;
}

}  // namespace posthog_emulator
