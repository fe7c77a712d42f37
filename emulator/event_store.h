#ifndef EMULATOR_EVENT_STORE_H_
#define EMULATOR_EVENT_STORE_H_

// EventStore: every captured event, kept as its JSON text and indexed by
// uuid. A uuid seen again is counted as a duplicate and not stored twice
// (PostHog deduplicates on uuid eventually; the emulator does it at once).
//
// Thread-safe. Events are spread over kShards lock-striped shards by uuid
// hash and a batch takes each shard's lock once, so concurrent /batch/
// requests rarely contend.

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

struct StoredEvent {
  std::string uuid;
  int64_t team_id = 0;
  std::string distinct_id;
  std::string event;  // the event name
  // The event object exactly as received. Query() returns it with "uuid",
  // "distinct_id" and "team_id" set to the fields above, "api_key"/"token"
  // removed, and "timestamp" set to `generated_timestamp` when that is
  // non-empty (the event had none).
  std::string json;
  std::string generated_timestamp;
};

// EventQuery narrows EventStore::Query; empty fields match everything.
struct EventQuery {
  std::string uuid;
  std::string event;
  std::string distinct_id;
  int64_t team_id = 0;
  size_t limit = 10000;
};

class EventStore final {
 public:
  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // Add stores the events whose uuid is new, in order, and returns how many
  // were duplicates (already stored, or repeated within `events`).
  size_t Add(std::vector<StoredEvent> events);

  // Count of stored events and of duplicates received since the last Clear.
  size_t count() const { return count_.load(); }
  size_t duplicates() const { return duplicates_.load(); }

  // Query returns the matching stored events (oldest first, at most
  // `limit`), each parsed back to JSON.
  std::vector<nlohmann::json> Query(const EventQuery& query) const;

  // DeleteForDistinctIds removes the events of `team_id` whose distinct_id
  // is in `distinct_ids`; returns how many were removed.
  size_t DeleteForDistinctIds(int64_t team_id, const std::vector<std::string>& distinct_ids);

  // Clear drops every event and resets both counters.
  void Clear();

 private:
  static constexpr size_t kShards = 16;
  struct Record {
    uint64_t seq = 0;
    StoredEvent event;
    bool deleted = false;
  };
  static constexpr size_t kNotFound = ~size_t{0};
  struct Shard {
    mutable absl::Mutex mu;
    std::deque<Record> records ABSL_GUARDED_BY(mu);
    // The uuid index, keyed by the uuid's 64-bit hash so that growing it
    // never re-reads (cache-cold) uuid strings; a uuid whose hash is
    // already taken by another uuid goes to `collided`. Both map to the
    // position in `records`.
    absl::flat_hash_map<uint64_t, size_t> by_hash ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, size_t> collided ABSL_GUARDED_BY(mu);

    // Find returns the position of `uuid` (hash `h`) or kNotFound.
    size_t Find(std::string_view uuid, uint64_t h) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  };

  static uint64_t HashOf(std::string_view uuid);
  static size_t ShardOf(uint64_t hash) { return (hash >> 40) % kShards; }

  Shard shards_[kShards];
  std::atomic<uint64_t> next_seq_{0};
  std::atomic<size_t> count_{0};
  std::atomic<size_t> duplicates_{0};
};

}  // namespace posthog_emulator

#endif  // EMULATOR_EVENT_STORE_H_
