#ifndef EMULATOR_EVENT_STORE_H_
#define EMULATOR_EVENT_STORE_H_

// EventStore: every captured event, kept as its JSON text and indexed by
// uuid. A uuid seen again is counted as a duplicate and not stored twice
// (PostHog deduplicates on uuid eventually; the emulator does it at once).
//
// Thread-safe. Events are spread over kShards lock-striped shards by uuid
// hash and a batch takes each shard's lock once, so concurrent /batch/
// requests rarely contend.
//
// Memory: each shard copies an event's fields into one record in its own
// append-only arena (RecordArena below), so an event costs its bytes plus a
// small header, and no allocation of its own. Events that arrived in a gzip
// body (every batch the gateway sends) keep no copy of their JSON: the
// store keeps the body's compressed bytes once, and each record its event's
// place in the body, which Query gunzips again (see BatchBody). That is 4-6
// times fewer bytes per event, and fresh memory is what an event costs most
// here: on this VM a page never touched before costs the kernel's zeroing at
// a fraction of memory speed (bench/README.md). The store only grows while
// events arrive, and on this VM each fresh 4 KiB page costs a fault of
// ~12 us: the arena's large blocks are advised as transparent huge pages,
// which turns 512 of those faults into one. Deleted events keep their bytes
// until Clear().

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {

// EventToStore is one event for EventStore::Add. The views need only live
// for the call: Add copies them.
struct EventToStore {
  absl::string_view uuid;
  int64_t team_id = 0;
  absl::string_view distinct_id;
  absl::string_view event;  // the event name
  // The event object exactly as received. Query() returns it with "uuid",
  // "distinct_id" and "team_id" set to the fields above, "api_key"/"token"
  // removed, and "timestamp" set to `generated_timestamp` when that is
  // non-empty (the event had none).
  absl::string_view json;
  absl::string_view generated_timestamp;
};

// BatchBody is what the events of one EventStore::Add call were read from:
// the decoded body, into which every event's `json` views, and, when it
// arrived gzip-compressed, the bytes as received (one gzip member that
// inflates to exactly `plain`). With `gzip` set the store keeps those bytes
// once for the batch (only if some event is new) and each new event's
// offset in `plain` instead of a copy of its JSON; an event whose `json` is
// not inside `plain`, or a `gzip` whose trailer does not give `plain`'s
// size, is copied as without a body.
struct BatchBody {
  absl::string_view plain;
  absl::string_view gzip;
};

// EventQuery narrows EventStore::Query; empty fields match everything.
struct EventQuery {
  std::string uuid;
  std::string event;
  std::string distinct_id;
  int64_t team_id = 0;
  size_t limit = 10000;
};

// RecordArena hands out memory that lives until Clear() (or destruction):
// blocks that double from kFirstBlock up to kHugeBlock, the large ones
// 2 MiB-aligned and madvise(MADV_HUGEPAGE)d; an allocation larger than a
// quarter of kHugeBlock gets a block of its own. Not thread-safe (a shard's
// lock guards it). Exposed for tests.
class RecordArena final {
 public:
  static constexpr size_t kFirstBlock = size_t{16} << 10;
  static constexpr size_t kHugeBlock = size_t{2} << 20;

  RecordArena() = default;
  RecordArena(const RecordArena&) = delete;
  RecordArena& operator=(const RecordArena&) = delete;
  ~RecordArena() { Clear(); }

  // Allocate returns `n` bytes aligned to 8. Throws std::bad_alloc like
  // operator new when the system has no memory.
  void* Allocate(size_t n);
  // Clear frees every block.
  void Clear();
  // Bytes reserved in blocks (for tests).
  size_t reserved() const { return reserved_; }

 private:
  struct Block {
    void* data;
    size_t size;
    bool mapped;  // from mmap (huge-page candidate), else operator new
  };
  static Block NewBlock(size_t size);

  std::vector<Block> blocks_;
  char* next_ = nullptr;
  char* end_ = nullptr;
  size_t next_block_size_ = kFirstBlock;
  size_t reserved_ = 0;
};

class EventStore final {
 public:
  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // Add stores the events whose uuid is new, in order, and returns how many
  // were duplicates (already stored, or repeated within `events`). `body`
  // (may be null) is what the events were read from; see BatchBody.
  size_t Add(const std::vector<EventToStore>& events, const BatchBody* body = nullptr);

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
  // Blob is a kept gzip body: this header, then its compressed bytes, in
  // blob_arena_. It lives until Clear().
  struct Blob {
    size_t gzip_size;
    size_t plain_size;
    const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  };
  // Record is a stored event: this header, then its bytes (uuid,
  // distinct_id, event name, generated timestamp and, without a blob, the
  // JSON) in one arena allocation. With a blob, the JSON is
  // [json_offset, json_offset + json_size) of the blob's plain text.
  // Sizes fit 32 bits: a body is at most 20 MiB.
  struct Record {
    uint64_t seq;
    int64_t team_id;
    const Blob* blob;
    uint32_t json_offset;
    uint32_t uuid_size;
    uint32_t distinct_id_size;
    uint32_t event_size;
    uint32_t generated_timestamp_size;
    uint32_t json_size;
    bool deleted;

    const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
    absl::string_view uuid() const { return {bytes(), uuid_size}; }
    absl::string_view distinct_id() const { return {bytes() + uuid_size, distinct_id_size}; }
    absl::string_view event() const { return {bytes() + uuid_size + distinct_id_size, event_size}; }
    absl::string_view generated_timestamp() const {
      return {bytes() + uuid_size + distinct_id_size + event_size, generated_timestamp_size};
    }
    // The JSON when stored inline (blob == nullptr).
    absl::string_view inline_json() const {
      return {bytes() + uuid_size + distinct_id_size + event_size + generated_timestamp_size,
              json_size};
    }
  };
  static constexpr size_t kNotFound = ~size_t{0};
  struct Shard {
    mutable absl::Mutex mu;
    RecordArena arena ABSL_GUARDED_BY(mu);
    // In arrival order; each points into `arena`.
    std::vector<Record*> records ABSL_GUARDED_BY(mu);
    // The uuid index, keyed by the uuid's 64-bit hash so that growing it
    // never re-reads (cache-cold) uuid strings; a uuid whose hash is
    // already taken by another uuid goes to `collided`. Both map to the
    // position in `records`.
    absl::flat_hash_map<uint64_t, size_t> by_hash ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, size_t> collided ABSL_GUARDED_BY(mu);

    // Find returns the position of `uuid` (hash `h`) or kNotFound.
    size_t Find(absl::string_view uuid, uint64_t h) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Append copies `e` into the arena as record `seq`; with `blob`, its
    // JSON is not copied but found at `json_offset` of the blob's text.
    Record* Append(const EventToStore& e, uint64_t seq, const Blob* blob, size_t json_offset)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  };

  static uint64_t HashOf(absl::string_view uuid);
  static size_t ShardOf(uint64_t hash) { return (hash >> 40) % kShards; }

  // KeepBlob copies `gzip` into blob_arena_.
  const Blob* KeepBlob(const BatchBody& body) ABSL_LOCKS_EXCLUDED(blob_mu_);

  // Held shared by Add and Query, exclusively by Clear: a Query reads
  // blobs after it has let go of the shards' locks.
  mutable absl::Mutex clear_mu_;
  Shard shards_[kShards];
  absl::Mutex blob_mu_;  // After a shard's mu.
  RecordArena blob_arena_ ABSL_GUARDED_BY(blob_mu_);
  std::atomic<uint64_t> next_seq_{0};
  std::atomic<size_t> count_{0};
  std::atomic<size_t> duplicates_{0};
};

}  // namespace posthog_emulator

#endif  // EMULATOR_EVENT_STORE_H_
