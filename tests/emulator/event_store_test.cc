// EventStore keeps every new event's fields in its shards' arenas: what
// Query returns must be exactly what Add was given (copied, not viewed),
// in arrival order, deduplicated on uuid, across many arena blocks and for
// events larger than a block.

#include "emulator/event_store.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libdeflate.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {
namespace {

using nlohmann::json;

// Owned fields of one event, viewed by EventToStore.
struct Owned {
  std::string uuid;
  std::string distinct_id;
  std::string event;
  std::string json;
  std::string generated_timestamp;
  int64_t team_id = 1;
  EventToStore View() const {
    return EventToStore{uuid, team_id, distinct_id, event, json, generated_timestamp};
  }
};

Owned Make(int n, size_t padding = 0) {
  Owned o;
  o.uuid = absl::StrCat("uuid-", n);
  o.distinct_id = absl::StrCat("user-", n % 7);
  o.event = n % 2 ? "odd" : "even";
  o.json = json{{"event", o.event},
                {"api_key", "phc_secret"},
                {"properties", {{"n", n}, {"pad", std::string(padding, 'x')}}}}
               .dump();
  if (n % 3 == 0) o.generated_timestamp = "2026-12-07T00:00:00.000Z";
  return o;
}

size_t Add(EventStore& store, const std::vector<Owned>& owned) {
  std::vector<EventToStore> views;
  for (const Owned& o : owned) views.push_back(o.View());
  return store.Add(views);
}

std::vector<json> All(const EventStore& store) {
  EventQuery q;
  q.limit = 1000000;
  return store.Query(q);
}

TEST(EventStoreTest, QueryReturnsWhatWasAddedInOrderAcrossManyBlocks) {
  EventStore store;
  std::vector<Owned> owned;
  // Enough bytes for several blocks of every shard's arena.
  for (int n = 0; n < 20000; ++n) owned.push_back(Make(n, n % 300));
  EXPECT_EQ(Add(store, owned), 0u);
  EXPECT_EQ(store.count(), owned.size());
  const std::vector<json> all = All(store);
  ASSERT_EQ(all.size(), owned.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const Owned& o = owned[i];
    const json& e = all[i];
    ASSERT_EQ(e["uuid"], o.uuid) << i;
    EXPECT_EQ(e["distinct_id"], o.distinct_id);
    EXPECT_EQ(e["team_id"], o.team_id);
    EXPECT_EQ(e["event"], o.event);
    EXPECT_FALSE(e.contains("api_key"));
    EXPECT_EQ(e["properties"]["n"], static_cast<int>(i));
    EXPECT_EQ(e["properties"]["pad"].get<std::string>().size(), i % 300);
    EXPECT_EQ(e.contains("timestamp"), !o.generated_timestamp.empty());
  }
}

// Gzip bodies: the events of a batch whose body arrived gzip-compressed are
// stored as their place in the kept body, and come back exactly as those
// stored inline do (also after the caller's buffers are gone, for events
// not in the body, and for a body whose trailer does not match).
std::string Gzip(const std::string& text) {
  libdeflate_compressor* c = libdeflate_alloc_compressor(1);
  std::string out(libdeflate_gzip_compress_bound(c, text.size()), '\0');
  out.resize(libdeflate_gzip_compress(c, text.data(), text.size(), out.data(), out.size()));
  libdeflate_free_compressor(c);
  return out;
}

// AddBatch adds `owned` as read from one body (their JSON joined by
// commas), gzip-compressed unless `gzip` says otherwise; the body and its
// compressed bytes are freed before returning.
size_t AddBatch(EventStore& store, const std::vector<Owned>& owned,
                const std::string* gzip_override = nullptr) {
  std::string plain = "[";
  std::vector<size_t> offsets;
  for (const Owned& o : owned) {
    if (plain.size() > 1) plain += ",";
    offsets.push_back(plain.size());
    plain += o.json;
  }
  plain += "]";
  std::string gzip = gzip_override != nullptr ? *gzip_override : Gzip(plain);
  std::vector<EventToStore> views;
  for (size_t i = 0; i < owned.size(); ++i) {
    EventToStore e = owned[i].View();
    e.json = absl::string_view(plain).substr(offsets[i], owned[i].json.size());
    views.push_back(e);
  }
  const BatchBody body{plain, gzip};
  const size_t duplicates = store.Add(views, &body);
  std::fill(plain.begin(), plain.end(), ' ');
  std::fill(gzip.begin(), gzip.end(), '\0');
  return duplicates;
}

TEST(EventStoreTest, EventsOfAGzipBodyComeBackAsThoseStoredInline) {
  EventStore inline_store;
  EventStore gzip_store;
  std::vector<Owned> owned;
  for (int n = 0; n < 3000; ++n) owned.push_back(Make(n, n % 300));
  for (size_t begin = 0; begin < owned.size(); begin += 500) {
    const std::vector<Owned> batch(owned.begin() + begin, owned.begin() + begin + 500);
    EXPECT_EQ(Add(inline_store, batch), 0u);
    EXPECT_EQ(AddBatch(gzip_store, batch), 0u);
  }
  // Duplicates only: nothing new, and they stay as first stored.
  std::vector<Owned> again = {Make(5), Make(6)};
  again[0].json = "{\"event\":\"changed\"}";
  EXPECT_EQ(AddBatch(gzip_store, again), 2u);
  // A body whose trailer does not give the plain size: copied inline.
  std::vector<Owned> odd = {Make(3000), Make(3001)};
  const std::string wrong = Gzip("not the body");
  EXPECT_EQ(AddBatch(gzip_store, odd, &wrong), 0u);
  Add(inline_store, odd);
  const std::vector<json> expected = All(inline_store);
  ASSERT_EQ(expected.size(), 3002u);
  EXPECT_EQ(All(gzip_store), expected);
  EventQuery q;
  q.uuid = "uuid-2999";
  const std::vector<json> one = gzip_store.Query(q);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], expected[2999]);
  q = EventQuery();
  q.event = "odd";
  q.limit = 3;
  const std::vector<json> odd_events = gzip_store.Query(q);
  ASSERT_EQ(odd_events.size(), 3u);
  EXPECT_EQ(odd_events[2], expected[5]);
  gzip_store.Clear();
  EXPECT_TRUE(All(gzip_store).empty());
  EXPECT_EQ(AddBatch(gzip_store, {owned[7]}), 0u);
  ASSERT_EQ(All(gzip_store).size(), 1u);
  EXPECT_EQ(All(gzip_store)[0], expected[7]);
}

TEST(EventStoreTest, AddCopiesTheViews) {
  EventStore store;
  std::vector<Owned> owned = {Make(1), Make(2)};
  Add(store, owned);
  for (Owned& o : owned) {
    std::fill(o.uuid.begin(), o.uuid.end(), 'z');
    std::fill(o.json.begin(), o.json.end(), ' ');
  }
  EventQuery q;
  q.uuid = "uuid-2";
  const std::vector<json> found = store.Query(q);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["properties"]["n"], 2);
}

TEST(EventStoreTest, AnEventLargerThanABlockIsStoredWhole) {
  EventStore store;
  std::vector<Owned> owned = {Make(1), Make(2, 3 * RecordArena::kHugeBlock), Make(3)};
  Add(store, owned);
  const std::vector<json> all = All(store);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1]["properties"]["pad"].get<std::string>(),
            std::string(3 * RecordArena::kHugeBlock, 'x'));
  EXPECT_EQ(all[2]["uuid"], "uuid-3");
}

TEST(EventStoreTest, DuplicatesAreCountedAndNotStored) {
  EventStore store;
  Owned again = Make(1);
  again.distinct_id = "someone-else";
  EXPECT_EQ(Add(store, {Make(1), Make(2), again}), 1u);
  EXPECT_EQ(Add(store, {Make(2), Make(3)}), 1u);
  EXPECT_EQ(store.count(), 3u);
  EXPECT_EQ(store.duplicates(), 2u);
  EventQuery q;
  q.uuid = "uuid-1";
  const std::vector<json> found = store.Query(q);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["distinct_id"], "user-1");
}

TEST(EventStoreTest, QueryFiltersAndDeleteAndClear) {
  EventStore store;
  std::vector<Owned> owned;
  for (int n = 0; n < 14; ++n) owned.push_back(Make(n));
  owned[13].team_id = 2;
  Add(store, owned);
  EventQuery q;
  q.event = "odd";
  EXPECT_EQ(store.Query(q).size(), 7u);
  q = EventQuery();
  q.distinct_id = "user-6";
  EXPECT_EQ(store.Query(q).size(), 2u);  // 6 and 13
  q.team_id = 1;
  EXPECT_EQ(store.Query(q).size(), 1u);

  // user-6 of team 1 (n = 6) goes; team 2's (n = 13) stays.
  EXPECT_EQ(store.DeleteForDistinctIds(1, {"user-6"}), 1u);
  EXPECT_EQ(store.count(), 13u);
  q = EventQuery();
  q.distinct_id = "user-6";
  const std::vector<json> left = store.Query(q);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["team_id"], 2);
  EXPECT_EQ(store.DeleteForDistinctIds(1, {"user-6"}), 0u);

  store.Clear();
  EXPECT_EQ(store.count(), 0u);
  EXPECT_EQ(store.duplicates(), 0u);
  EXPECT_TRUE(All(store).empty());
  // A cleared uuid is new again.
  EXPECT_EQ(Add(store, {Make(6)}), 0u);
  EXPECT_EQ(All(store).size(), 1u);
}

// While the blocks are still small, an allocation larger than the next
// block (but not large enough for a block of its own) gets a block that
// holds it: a 17 KiB kept body into a fresh arena overflowed its 16 KiB
// first block.
TEST(RecordArenaTest, AnAllocationLargerThanTheNextBlockFits) {
  RecordArena arena;
  size_t total = 0;
  for (size_t n : {size_t{17} << 10, size_t{100} << 10, size_t{300} << 10, size_t{40} << 10}) {
    char* p = static_cast<char*>(arena.Allocate(n));
    std::memset(p, 0x5a, n);
    total += n;
    EXPECT_GE(arena.reserved(), total);
  }
}

TEST(RecordArenaTest, AllocationsAreAlignedDistinctAndLive) {
  RecordArena arena;
  std::vector<std::pair<char*, size_t>> got;
  size_t total = 0;
  for (size_t i = 0; total < 3 * RecordArena::kHugeBlock; ++i) {
    const size_t n = 1 + (i * 37) % 5000;
    char* p = static_cast<char*>(arena.Allocate(n));
    ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
    std::memset(p, static_cast<int>(i & 0xff), n);
    got.emplace_back(p, n);
    total += n;
  }
  char* big = static_cast<char*>(arena.Allocate(RecordArena::kHugeBlock));
  std::memset(big, 0xab, RecordArena::kHugeBlock);
  for (size_t i = 0; i < got.size(); ++i) {
    for (size_t k = 0; k < got[i].second; ++k) {
      ASSERT_EQ(static_cast<unsigned char>(got[i].first[k]), i & 0xff) << i;
    }
  }
  EXPECT_GE(arena.reserved(), total + RecordArena::kHugeBlock);
  arena.Clear();
  EXPECT_EQ(arena.reserved(), 0u);
  EXPECT_NE(arena.Allocate(8), nullptr);
}

}  // namespace
}  // namespace posthog_emulator
