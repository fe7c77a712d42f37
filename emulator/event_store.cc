#include "emulator/event_store.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "libdeflate.h"

namespace posthog_emulator {

namespace {

constexpr size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// KeepsBlob tells whether `body` can stand for its events' JSON: a gzip
// member whose trailer gives the plain text's size (what one member that
// inflates to exactly `plain` has; several members, or none, do not).
bool KeepsBlob(const BatchBody* body) {
  if (body == nullptr || body->gzip.size() < 18 || body->plain.empty()) return false;
  const auto* g = reinterpret_cast<const unsigned char*>(body->gzip.data());
  if (g[0] != 0x1f || g[1] != 0x8b) return false;
  const unsigned char* t = g + body->gzip.size() - 4;
  const uint32_t isize = static_cast<uint32_t>(t[0]) | static_cast<uint32_t>(t[1]) << 8 |
                         static_cast<uint32_t>(t[2]) << 16 | static_cast<uint32_t>(t[3]) << 24;
  return isize == body->plain.size();
}

// InBody tells whether `part` lies within `whole`.
bool InBody(absl::string_view part, absl::string_view whole) {
  const auto p = reinterpret_cast<uintptr_t>(part.data());
  const auto w = reinterpret_cast<uintptr_t>(whole.data());
  return p >= w && p + part.size() <= w + whole.size();
}

}  // namespace

RecordArena::Block RecordArena::NewBlock(size_t size) {
  if (size == kHugeBlock) {
    // Map twice the size and keep the 2 MiB-aligned middle: only an aligned
    // range can be backed by a huge page.
    const size_t span = 2 * kHugeBlock;
    void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      char* start = static_cast<char*>(p);
      char* aligned = reinterpret_cast<char*>(RoundUp(reinterpret_cast<uintptr_t>(start), size));
      if (aligned > start) munmap(start, static_cast<size_t>(aligned - start));
      char* tail = aligned + size;
      const size_t tail_size = static_cast<size_t>(start + span - tail);
      if (tail_size > 0) munmap(tail, tail_size);
      // Advice only: without transparent huge pages the block is served by
      // 4 KiB pages as before.
      madvise(aligned, size, MADV_HUGEPAGE);
      return Block{aligned, size, true};
    }
  }
  return Block{::operator new(size), size, false};
}

void* RecordArena::Allocate(size_t n) {
  n = RoundUp(n, 8);
  if (n > static_cast<size_t>(end_ - next_)) {
    if (n > kHugeBlock / 4) {
      // Its own block; the current one keeps serving small records.
      blocks_.push_back(NewBlock(n));
      reserved_ += n;
      return blocks_.back().data;
    }
    // At least `n`: while the blocks are still small, an allocation may be
    // larger than the next one (a 20 KiB event or kept body into a 16 KiB
    // first block).
    while (next_block_size_ < n) next_block_size_ = std::min(kHugeBlock, next_block_size_ * 2);
    const Block block = NewBlock(next_block_size_);
    blocks_.push_back(block);
    reserved_ += block.size;
    next_ = static_cast<char*>(block.data);
    end_ = next_ + block.size;
    next_block_size_ = std::min(kHugeBlock, next_block_size_ * 2);
  }
  void* out = next_;
  next_ += n;
  return out;
}

void RecordArena::Clear() {
  for (const Block& block : blocks_) {
    if (block.mapped) {
      munmap(block.data, block.size);
    } else {
      ::operator delete(block.data);
    }
  }
  blocks_.clear();
  next_ = end_ = nullptr;
  next_block_size_ = kFirstBlock;
  reserved_ = 0;
}

uint64_t EventStore::HashOf(absl::string_view uuid) {
  return absl::Hash<absl::string_view>()(uuid);
}

size_t EventStore::Shard::Find(absl::string_view uuid, uint64_t h) const {
  auto it = by_hash.find(h);
  // `collided` only holds uuids whose hash is in `by_hash`.
  if (it == by_hash.end()) return kNotFound;
  if (records[it->second]->uuid() == uuid) return it->second;
  auto c = collided.find(std::string(uuid));
  return c == collided.end() ? kNotFound : c->second;
}

EventStore::Record* EventStore::Shard::Append(const EventToStore& e, uint64_t seq, const Blob* blob,
                                              size_t json_offset) {
  const absl::string_view json = blob == nullptr ? e.json : absl::string_view();
  const size_t size = e.uuid.size() + e.distinct_id.size() + e.event.size() +
                      e.generated_timestamp.size() + json.size();
  Record* r = new (arena.Allocate(sizeof(Record) + size))
      Record{seq,
             e.team_id,
             blob,
             static_cast<uint32_t>(json_offset),
             static_cast<uint32_t>(e.uuid.size()),
             static_cast<uint32_t>(e.distinct_id.size()),
             static_cast<uint32_t>(e.event.size()),
             static_cast<uint32_t>(e.generated_timestamp.size()),
             static_cast<uint32_t>(e.json.size()),
             false};
  char* out = reinterpret_cast<char*>(r + 1);
  for (absl::string_view part : {e.uuid, e.distinct_id, e.event, e.generated_timestamp, json}) {
    if (!part.empty()) std::memcpy(out, part.data(), part.size());
    out += part.size();
  }
  records.push_back(r);
  return r;
}

const EventStore::Blob* EventStore::KeepBlob(const BatchBody& body) {
  absl::MutexLock lock(&blob_mu_);
  Blob* blob = new (blob_arena_.Allocate(sizeof(Blob) + body.gzip.size()))
      Blob{body.gzip.size(), body.plain.size()};
  std::memcpy(blob + 1, body.gzip.data(), body.gzip.size());
  return blob;
}

size_t EventStore::Add(const std::vector<EventToStore>& events, const BatchBody* body) {
  absl::ReaderMutexLock clear_lock(&clear_mu_);
  const bool keep_blob = KeepsBlob(body);
  // Kept when the first new event that lies in the body is stored.
  const Blob* blob = nullptr;

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
      if (keep_blob && InBody(events[i].json, body->plain)) {
        if (blob == nullptr) blob = KeepBlob(*body);
        shard.Append(events[i], first_seq + i, blob,
                     static_cast<size_t>(events[i].json.data() - body->plain.data()));
      } else {
        shard.Append(events[i], first_seq + i, nullptr, 0);
      }
      if (!shard.by_hash.emplace(h, pos).second) {
        shard.collided.emplace(std::string(events[i].uuid), pos);
      }
      ++added;
    }
  }
  count_ += added;
  duplicates_ += duplicates;
  return duplicates;
}

std::vector<nlohmann::json> EventStore::Query(const EventQuery& query) const {
  // What Query needs of a record, copied under the shard's lock (a Clear()
  // may free the arena as soon as it is released).
  absl::ReaderMutexLock clear_lock(&clear_mu_);  // Blobs stay until it is released.
  struct Found {
    uint64_t seq;
    int64_t team_id;
    std::string uuid;
    std::string distinct_id;
    std::string json;  // when stored inline
    std::string generated_timestamp;
    const Blob* blob;  // else: [json_offset, + json_size) of its text
    size_t json_offset;
    size_t json_size;
  };
  std::vector<Found> found;
  auto matches = [&](const Record& r) {
    return !r.deleted && (query.event.empty() || r.event() == query.event) &&
           (query.distinct_id.empty() || r.distinct_id() == query.distinct_id) &&
           (query.team_id == 0 || r.team_id == query.team_id);
  };
  auto add = [&](const Record& r) {
    found.push_back(Found{r.seq, r.team_id, std::string(r.uuid()), std::string(r.distinct_id()),
                          r.blob == nullptr ? std::string(r.inline_json()) : std::string(),
                          std::string(r.generated_timestamp()), r.blob, r.json_offset,
                          r.json_size});
  };
  if (!query.uuid.empty()) {
    const uint64_t h = HashOf(query.uuid);
    const Shard& shard = shards_[ShardOf(h)];
    absl::MutexLock lock(&shard.mu);
    const size_t pos = shard.Find(query.uuid, h);
    if (pos != kNotFound && matches(*shard.records[pos])) add(*shard.records[pos]);
  } else {
    for (const Shard& shard : shards_) {
      absl::MutexLock lock(&shard.mu);
      for (const Record* r : shard.records) {
        if (matches(*r)) add(*r);
      }
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.seq < b.seq; });
  // Each kept body is gunzipped once per Query, when one of its events is
  // returned. It inflated to its plain text when it arrived (Add checked the
  // size in its trailer); should it not now, its events are left out.
  struct FreeDecompressor {
    void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
  };
  std::unique_ptr<libdeflate_decompressor, FreeDecompressor> decompressor;
  absl::flat_hash_map<const Blob*, std::string> plain;
  auto text_of = [&](const Blob* blob) -> const std::string& {
    auto [it, inserted] = plain.try_emplace(blob);
    if (!inserted) return it->second;
    if (decompressor == nullptr) decompressor.reset(libdeflate_alloc_decompressor());
    std::string& text = it->second;
    text.resize(blob->plain_size);
    size_t produced = 0;
    if (decompressor == nullptr ||
        libdeflate_gzip_decompress(decompressor.get(), blob->bytes(), blob->gzip_size, text.data(),
                                   text.size(), &produced) != LIBDEFLATE_SUCCESS ||
        produced != blob->plain_size) {
      text.clear();
    }
    return text;
  };
  std::vector<nlohmann::json> out;
  for (size_t i = 0; i < found.size() && i < query.limit; ++i) {
    const Found& e = found[i];
    absl::string_view json = e.json;
    if (e.blob != nullptr) {
      const std::string& text = text_of(e.blob);
      if (e.json_offset + e.json_size > text.size()) continue;
      json = absl::string_view(text).substr(e.json_offset, e.json_size);
    }
    nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
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
    for (Record* r : shard.records) {
      if (!r->deleted && r->team_id == team_id && ids.contains(r->distinct_id())) {
        r->deleted = true;
        ++removed;
      }
    }
  }
  count_ -= removed;
  return removed;
}

void EventStore::Clear() {
  absl::MutexLock clear_lock(&clear_mu_);
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    shard.by_hash.clear();
    shard.collided.clear();
    shard.records.clear();
    shard.arena.Clear();
  }
  {
    absl::MutexLock lock(&blob_mu_);
    blob_arena_.Clear();
  }
  count_ = 0;
  duplicates_ = 0;
}

}  // namespace posthog_emulator
