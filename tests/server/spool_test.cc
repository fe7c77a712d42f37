#include "server/capture/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "tests/fakes/faulty_spool_disk.h"
#include "tests/fakes/scratch_dir.h"
#include "tests/fakes/status_matchers.h"

namespace posthog_gateway {
namespace {

std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> names;
  DIR* handle = opendir(dir.c_str());
  while (const dirent* entry = readdir(handle)) {
    if (absl::StartsWith(entry->d_name, "segment-")) names.push_back(entry->d_name);
  }
  closedir(handle);
  std::sort(names.begin(), names.end());
  return names;
}

// One replayed record and its segment, read back from Open's runs.
struct Replayed {
  SegmentId segment = 0;
  SpoolRecord record;
};

std::vector<Replayed> ReadReplayed(const Spool::Opened& opened) {
  std::vector<Replayed> out;
  int64_t count = 0;
  for (const ReplayedRun& run : opened.replayed) {
    absl::StatusOr<std::vector<SpoolRecord>> records = opened.spool->Read(run.location);
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) continue;
    for (SpoolRecord& record : *records) {
      EXPECT_EQ(record.project, run.project);
      out.push_back({run.location.segment, std::move(record)});
    }
    count += run.location.count;
  }
  EXPECT_EQ(count, opened.replayed_records);
  return out;
}

class SpoolTest : public ::testing::Test {
 protected:
  SpoolTest() {
    // Spool::Open creates the spool directory itself.
    dir_ = test_support::ScratchDir() + "/spool";
    options_.dir = dir_;
  }

  Spool::Opened Open() {
    absl::StatusOr<Spool::Opened> opened = Spool::Open(options_);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return std::move(*opened);
  }

  static std::vector<SpoolRecord> Records(int count, const std::string& prefix) {
    std::vector<SpoolRecord> records;
    for (int i = 0; i < count; ++i) {
      records.push_back({"demo", i % 2 == 1, absl::StrCat("{\"n\":\"", prefix, i, "\"}")});
    }
    return records;
  }

  std::string dir_;
  SpoolOptions options_;
};

TEST_F(SpoolTest, ReplaysEveryUnreleasedRecordInOrderAfterReopening) {
  {
    Spool::Opened opened = Open();
    EXPECT_TRUE(opened.replayed_records == 0);
    ASSERT_TRUE(opened.spool->Append(Records(3, "a")).ok());
    ASSERT_TRUE(opened.spool->Append(Records(2, "b")).ok());
  }
  Spool::Opened reopened = Open();
  const std::vector<Replayed> replayed = ReadReplayed(reopened);

  ASSERT_EQ(replayed.size(), 5u);
  EXPECT_EQ(replayed[0].record.json, R"({"n":"a0"})");
  EXPECT_EQ(replayed[0].record.project, "demo");
  EXPECT_FALSE(replayed[0].record.historical_migration);
  EXPECT_TRUE(replayed[1].record.historical_migration);
  EXPECT_EQ(replayed[4].record.json, R"({"n":"b1"})");
  EXPECT_EQ(reopened.damaged_segments, 0);
}

TEST_F(SpoolTest, ReplayKeepsOnlyWhereRecordsAreInBoundedRunsOfOneProject) {
  {
    Spool::Opened opened = Open();
    ASSERT_TRUE(opened.spool->Append({{"a", false, "{}"}, {"a", false, "{}"}}).ok());
    ASSERT_TRUE(opened.spool->Append({{"b", false, "{}"}}).ok());
    ASSERT_TRUE(opened.spool->Append({{"a", false, "{}"}}).ok());
    std::vector<SpoolRecord> many(2500, SpoolRecord{"c", false, R"({"n":1})"});
    ASSERT_TRUE(opened.spool->Append(many).ok());
  }
  Spool::Opened reopened = Open();

  std::vector<std::pair<std::string, int64_t>> runs;
  for (const ReplayedRun& run : reopened.replayed)
    runs.emplace_back(run.project, run.location.count);
  EXPECT_EQ(runs, (std::vector<std::pair<std::string, int64_t>>{
                      {"a", 2}, {"b", 1}, {"a", 1}, {"c", 1000}, {"c", 1000}, {"c", 500}}));
  EXPECT_EQ(reopened.replayed_records, 2504);
  EXPECT_EQ(ReadReplayed(reopened).size(), 2504u);
}

// The references of `records`, stored together at `location`.
std::vector<RecordRef> Refs(const SpoolLocation& location,
                            const std::vector<SpoolRecord>& records) {
  std::vector<RecordRef> refs;
  for (int64_t offset : Spool::RecordOffsets(location, records)) {
    refs.push_back({location.segment, offset});
  }
  return refs;
}

TEST_F(SpoolTest, DeletesASegmentOnceAllItsRecordsAreReleasedAndItIsClosed) {
  const std::vector<SpoolRecord> records = Records(3, "a");
  {
    Spool::Opened opened = Open();
    absl::StatusOr<SpoolLocation> location = opened.spool->Append(records);
    ASSERT_TRUE(location.ok());
    opened.spool->Release({Refs(*location, records)[1]});
  }
  // The released record is written down: a restart replays the other two.
  Spool::Opened reopened = Open();
  const std::vector<Replayed> replayed = ReadReplayed(reopened);
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(replayed[0].record.json, records[0].json);
  EXPECT_EQ(replayed[1].record.json, records[2].json);
  EXPECT_EQ(reopened.replayed.size(), 2u);  // Two runs: the released one splits them.
  EXPECT_EQ(Segments(dir_).size(), 3u);     // The replayed one, its release log, the new one.

  std::vector<RecordRef> rest;
  for (const ReplayedRun& run : reopened.replayed) {
    absl::StatusOr<std::vector<SpoolRecord>> read = reopened.spool->Read(run.location);
    ASSERT_TRUE(read.ok()) << read.status();
    for (const RecordRef& ref : Refs(run.location, *read)) rest.push_back(ref);
  }
  reopened.spool->Release(rest);

  EXPECT_EQ(Segments(dir_).size(), 1u);  // Segment and log deleted; the new one.
  reopened.spool.reset();
  EXPECT_TRUE(Open().replayed_records == 0);
}

// Delivered events are not sent again after a restart, graceful or not (a
// process crash keeps what write(2) took), unless the OS crashed.
TEST_F(SpoolTest, ReleasedRecordsAreNotReplayedAfterARestart) {
  const std::vector<SpoolRecord> records = Records(4, "r");
  {
    Spool::Opened opened = Open();
    absl::StatusOr<SpoolLocation> location = opened.spool->Append(records);
    ASSERT_TRUE(location.ok());
    const std::vector<RecordRef> refs = Refs(*location, records);
    opened.spool->Release({refs[0], refs[1]});
    opened.spool->Release({refs[3]});
    // The segment is still being written: it stays, with its log.
  }
  Spool::Opened reopened = Open();
  EXPECT_EQ(reopened.replayed_records, 1);
  const std::vector<Replayed> replayed = ReadReplayed(reopened);
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].record.json, records[2].json);
}

// A torn last entry (a crash mid-write) is ignored: that record is replayed.
// A log whose segment is gone is removed before a new segment can take its id.
TEST_F(SpoolTest, OutstandingCountsAppendedAndReplayedRecordsUntilReleased) {
  const std::vector<SpoolRecord> records = Records(3, "a");
  {
    Spool::Opened opened = Open();
    EXPECT_EQ(opened.spool->Outstanding(), 0);
    absl::StatusOr<SpoolLocation> location = opened.spool->Append(records);
    ASSERT_TRUE(location.ok());
    EXPECT_EQ(opened.spool->Outstanding(), 3);
    opened.spool->Release({Refs(*location, records)[0]});
    EXPECT_EQ(opened.spool->Outstanding(), 2);
  }
  // A spool opened on what another process left: what it has to deliver.
  Spool::Opened reopened = Open();
  EXPECT_EQ(reopened.spool->Outstanding(), 2);
  std::vector<RecordRef> rest;
  for (const ReplayedRun& run : reopened.replayed) {
    absl::StatusOr<std::vector<SpoolRecord>> read = reopened.spool->Read(run.location);
    ASSERT_TRUE(read.ok()) << read.status();
    for (const RecordRef& ref : Refs(run.location, *read)) rest.push_back(ref);
  }
  reopened.spool->Release(rest);
  EXPECT_EQ(reopened.spool->Outstanding(), 0);
}

TEST_F(SpoolTest, WritableWhileItsDirectoryIsThereAndNotAfter) {
  Spool::Opened opened = Open();
  EXPECT_TRUE(opened.spool->Writable());

  // The volume went away under the pod (its directory is gone): readiness
  // must drop, whatever the open segment still takes.
  const std::string moved = dir_ + ".moved";
  ASSERT_EQ(std::rename(dir_.c_str(), moved.c_str()), 0);
  EXPECT_FALSE(opened.spool->Writable());

  ASSERT_EQ(std::rename(moved.c_str(), dir_.c_str()), 0);
  EXPECT_TRUE(opened.spool->Writable());
}

TEST_F(SpoolTest, ReleaseLogsSurviveTornEntriesAndOrphansAreRemoved) {
  const std::vector<SpoolRecord> records = Records(2, "t");
  SegmentId segment = 0;
  {
    Spool::Opened opened = Open();
    absl::StatusOr<SpoolLocation> location = opened.spool->Append(records);
    ASSERT_TRUE(location.ok());
    segment = location->segment;
    opened.spool->Release({Refs(*location, records)[0]});
  }
  const std::string log = absl::StrFormat("%s/segment-%020d.released", dir_, segment);
  struct stat info;
  ASSERT_EQ(stat(log.c_str(), &info), 0) << log;
  EXPECT_EQ(info.st_size, 8);
  std::ofstream(log, std::ios::binary | std::ios::app) << std::string("\x07\x00\x00", 3);
  EXPECT_EQ(Open().replayed_records, 1);

  std::ofstream(absl::StrFormat("%s/segment-%020d.released", dir_, segment + 100)) << "orphan";
  Open();
  for (const std::string& name : Segments(dir_)) {
    EXPECT_FALSE(absl::StrContains(name, absl::StrFormat("%020d", segment + 100))) << name;
  }
}

TEST_F(SpoolTest, FullSpoolRefusesWithRetryInfoAndKeepsWhatItHas) {
  options_.max_bytes = 1 << 20;
  options_.segment_bytes = 64 << 10;
  Spool::Opened opened = Open();
  std::vector<SpoolRecord> big = {{"demo", false, std::string(600 << 10, 'x')}};
  ASSERT_TRUE(opened.spool->Append(big).ok());

  absl::StatusOr<SpoolLocation> refused = opened.spool->Append(big);

  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelay(refused.status()), absl::Seconds(1));
  opened.spool.reset();
  EXPECT_EQ(Open().replayed_records, 1);
}

TEST_F(SpoolTest, ConcurrentAppendsAllLand) {
  Spool::Opened opened = Open();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(opened.spool->Append(Records(5, absl::StrCat(t, "-", i, "-"))).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  opened.spool.reset();

  EXPECT_EQ(Open().replayed_records, 8 * 20 * 5);
}

TEST_F(SpoolTest, ReadReturnsTheRecordsOfOneAppend) {
  Spool::Opened opened = Open();
  ASSERT_TRUE(opened.spool->Append(Records(3, "a")).ok());
  absl::StatusOr<SpoolLocation> second = opened.spool->Append(Records(2, "b"));
  ASSERT_TRUE(second.ok());

  absl::StatusOr<std::vector<SpoolRecord>> read = opened.spool->Read(*second);

  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].json, R"({"n":"b0"})");
  EXPECT_EQ((*read)[1].json, R"({"n":"b1"})");
  EXPECT_TRUE((*read)[1].historical_migration);
}

TEST_F(SpoolTest, CorruptRecordIsSkippedAndTheRecordsAfterItKept) {
  {
    Spool::Opened opened = Open();
    ASSERT_TRUE(opened.spool->Append(Records(3, "a")).ok());
  }
  const std::string path = dir_ + "/" + Segments(dir_)[0];
  // Flip a byte of the second record's payload.
  const size_t first = Spool::EncodeRecord(Records(1, "a")[0]).size();
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(first + 12));
    file.put('#');
  }

  Spool::Opened reopened = Open();
  const std::vector<Replayed> replayed = ReadReplayed(reopened);

  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(replayed[0].record.json, R"({"n":"a0"})");
  EXPECT_EQ(replayed[1].record.json, R"({"n":"a2"})");
  EXPECT_EQ(reopened.damaged_segments, 1);
  EXPECT_EQ(reopened.damaged_bytes, static_cast<int64_t>(first));  // The second record.
}

TEST_F(SpoolTest, CorruptLengthResynchronizesOnTheNextIntactRecord) {
  {
    Spool::Opened opened = Open();
    ASSERT_TRUE(opened.spool->Append(Records(4, "a")).ok());
  }
  const std::string path = dir_ + "/" + Segments(dir_)[0];
  const size_t first = Spool::EncodeRecord(Records(1, "a")[0]).size();
  {
    // The second record's length claims more than the file holds.
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(first + 2));
    file.put('\x7f');
  }

  Spool::Opened reopened = Open();
  const std::vector<Replayed> replayed = ReadReplayed(reopened);

  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(replayed[0].record.json, R"({"n":"a0"})");
  EXPECT_EQ(replayed[1].record.json, R"({"n":"a2"})");
  EXPECT_EQ(replayed[2].record.json, R"({"n":"a3"})");
  EXPECT_EQ(reopened.damaged_segments, 1);
}

// A crash mid-write leaves the last record torn: in a preallocated segment
// its end is still zeros; in one that grew past its preallocation (or was
// written before segments were preallocated) the file ends inside it.
TEST_F(SpoolTest, TornLastRecordIsDamageAndTheIntactRecordsAreDelivered) {
  for (const bool truncate_file : {false, true}) {
    SCOPED_TRACE(truncate_file ? "file ends inside the record" : "record ends in zeros");
    std::system(("rm -rf " + dir_).c_str());
    {
      Spool::Opened opened = Open();
      ASSERT_TRUE(opened.spool->Append(Records(3, "a")).ok());
    }
    int64_t end = 0;
    for (const SpoolRecord& record : Records(3, "a")) {
      end += static_cast<int64_t>(Spool::EncodeRecord(record).size());
    }
    const std::string path = dir_ + "/" + Segments(dir_)[0];
    if (truncate_file) {
      ASSERT_EQ(truncate(path.c_str(), end - 3), 0);
    } else {
      const int fd = open(path.c_str(), O_WRONLY);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(pwrite(fd, "\0\0\0", 3, end - 3), 3);
      close(fd);
    }

    Spool::Opened reopened = Open();
    const std::vector<Replayed> replayed = ReadReplayed(reopened);
    EXPECT_EQ(replayed.size(), 2u);
    EXPECT_EQ(reopened.damaged_segments, 1);
  }
}

// Segments are preallocated, so a sync flushes data only; the zeros after
// the records are not data, not damage, and not counted as spooled bytes.
TEST_F(SpoolTest, SegmentsArePreallocatedAndTheirZerosEndThem) {
  options_.segment_bytes = 256 << 10;
  {
    Spool::Opened opened = Open();
    absl::StatusOr<SpoolLocation> first = opened.spool->Append(Records(2, "pre"));
    ASSERT_TRUE(first.ok()) << first.status();
    const std::string path = dir_ + "/" + Segments(dir_)[0];
    struct stat info;
    ASSERT_EQ(stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_size, options_.segment_bytes);
    EXPECT_EQ(opened.spool->bytes(), first->bytes);
    // Records after the first land after it, not at the file's end.
    absl::StatusOr<SpoolLocation> second = opened.spool->Append(Records(1, "post"));
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->offset, first->bytes);
    absl::StatusOr<std::vector<SpoolRecord>> read = opened.spool->Read(*second);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->front().json, Records(1, "post").front().json);
  }
  Spool::Opened reopened = Open();
  EXPECT_EQ(reopened.damaged_segments, 0);
  EXPECT_EQ(reopened.replayed_records, 3);
  const std::vector<Replayed> replayed = ReadReplayed(reopened);
  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(replayed[2].record.json, Records(1, "post").front().json);
}

// A segment that outgrows its preallocation (a round larger than what is
// left) keeps growing; the next segment is preallocated again.
TEST_F(SpoolTest, ASegmentGrowsPastItsPreallocationAndTheNextIsPreallocated) {
  options_.segment_bytes = 64 << 10;
  Spool::Opened opened = Open();
  std::vector<SpoolRecord> big;
  for (int i = 0; i < 3; ++i) {
    big.push_back({"demo", false, absl::StrCat("{\"pad\":\"", std::string(30000, 'x'), i, "\"}")});
  }
  absl::StatusOr<SpoolLocation> first = opened.spool->Append(big);  // ~90 KB in a 64 KiB segment.
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<SpoolLocation> second = opened.spool->Append(Records(1, "next"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->segment, first->segment);
  const std::vector<std::string> segments = Segments(dir_);
  ASSERT_EQ(segments.size(), 2u);
  struct stat info;
  ASSERT_EQ(stat((dir_ + "/" + segments[0]).c_str(), &info), 0);
  EXPECT_EQ(info.st_size, first->bytes);
  // The second segment was taken from the spare the preparer made meanwhile,
  // or started empty if it was not ready yet: either way its data reads back.
  absl::StatusOr<std::vector<SpoolRecord>> read = opened.spool->Read(*second);
  ASSERT_TRUE(read.ok()) << read.status();
  opened.spool.reset();
  EXPECT_EQ(Open().replayed_records, 4);
}

TEST_F(SpoolTest, AppendAsyncCallsBackOnceSyncedAndShareGroupsWithAppend) {
  Spool::Opened opened = Open();
  constexpr int kCalls = 40;
  absl::Mutex mu;
  std::vector<absl::StatusOr<SpoolLocation>> outcomes;
  for (int i = 0; i < kCalls; ++i) {
    opened.spool->AppendAsync(Records(2, absl::StrCat("async", i)),
                              [&](absl::StatusOr<SpoolLocation> location) {
                                absl::MutexLock lock(&mu);
                                outcomes.push_back(std::move(location));
                              });
  }
  // A synchronous Append queued behind them returns after they were synced.
  absl::StatusOr<SpoolLocation> last = opened.spool->Append(Records(1, "sync"));
  ASSERT_TRUE(last.ok()) << last.status();
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(outcomes.size(), static_cast<size_t>(kCalls));
    for (const absl::StatusOr<SpoolLocation>& outcome : outcomes) {
      ASSERT_TRUE(outcome.ok()) << outcome.status();
      EXPECT_EQ(outcome->count, 2);
      absl::StatusOr<std::vector<SpoolRecord>> read = opened.spool->Read(*outcome);
      ASSERT_TRUE(read.ok()) << read.status();
      EXPECT_EQ(read->size(), 2u);
    }
  }
  opened.spool.reset();
  EXPECT_EQ(Open().replayed_records, static_cast<int64_t>(2 * kCalls + 1));
}

// Rounds are written with writev, at most IOV_MAX records per call: appends
// queued faster than the writer syncs make rounds far larger than that, and
// every record must still land whole, in order, where its location says.
TEST_F(SpoolTest, RoundsLargerThanOneWritevLandWholeAndInOrder) {
  Spool::Opened opened = Open();
  constexpr int kCalls = 5000;  // Over IOV_MAX (1024) several times.
  absl::Mutex mu;
  std::vector<std::pair<int, SpoolLocation>> landed;
  for (int i = 0; i < kCalls; ++i) {
    opened.spool->AppendAsync(Records(1, absl::StrCat("many", i)),
                              [&, i](absl::StatusOr<SpoolLocation> location) {
                                ASSERT_TRUE(location.ok()) << location.status();
                                absl::MutexLock lock(&mu);
                                landed.emplace_back(i, *location);
                              });
  }
  ASSERT_TRUE(opened.spool->Append(Records(1, "last")).ok());
  absl::MutexLock lock(&mu);
  ASSERT_EQ(landed.size(), static_cast<size_t>(kCalls));
  for (const auto& [i, location] : landed) {
    absl::StatusOr<std::vector<SpoolRecord>> read = opened.spool->Read(location);
    ASSERT_TRUE(read.ok()) << i << ": " << read.status();
    ASSERT_EQ(read->size(), 1u);
    EXPECT_EQ(read->front().json, Records(1, absl::StrCat("many", i)).front().json);
  }
  opened.spool.reset();
  const Spool::Opened reopened = Open();
  EXPECT_EQ(reopened.replayed_records, kCalls + 1);
  EXPECT_EQ(reopened.damaged_segments, 0);
}

TEST_F(SpoolTest, AppendAsyncRefusedWhenFullCallsBackAtOnce) {
  options_.max_bytes = 1 << 20;
  Spool::Opened opened = Open();
  std::vector<SpoolRecord> big = {{"demo", false, std::string(600 << 10, 'x')}};
  ASSERT_TRUE(opened.spool->Append(big).ok());
  bool called = false;
  absl::Status status;

  opened.spool->AppendAsync(big, [&](absl::StatusOr<SpoolLocation> location) {
    called = true;
    status = location.status();
  });

  // Refused before queueing: on this thread, before AppendAsync returns.
  ASSERT_TRUE(called);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelay(status), absl::Seconds(1));
}

// The disk fails under the spool (tests/fakes/faulty_spool_disk.h): the
// records of a round that was not synced are refused with UNAVAILABLE (the
// caller keeps them), the spool reports itself unwritable until a round
// succeeds again, and every acknowledged record is still there after a
// restart.
TEST_F(SpoolTest, AFailingDiskIsUnavailableAcknowledgesNothingUnsyncedAndRecovers) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  {
    Spool::Opened opened = Open();
    ASSERT_THAT(opened.spool->Append(Records(2, "before")), test_support::IsOk());

    disk.FailSyncs(1, EIO);
    EXPECT_THAT(
        opened.spool->Append(Records(2, "unsynced")),
        test_support::StatusIs(absl::StatusCode::kUnavailable,
                               ::testing::AllOf(::testing::HasSubstr("cannot sync"),
                                                ::testing::HasSubstr("Input/output error"))));
    EXPECT_FALSE(opened.spool->Writable());

    disk.FailWrites(1, ENOSPC);
    EXPECT_THAT(opened.spool->Append(Records(1, "unwritten")),
                test_support::StatusIs(absl::StatusCode::kUnavailable,
                                       ::testing::HasSubstr("No space left on device")));
    EXPECT_FALSE(opened.spool->Writable());

    ASSERT_THAT(opened.spool->Append(Records(1, "after")), test_support::IsOk());
    EXPECT_TRUE(opened.spool->Writable());
    EXPECT_EQ(opened.spool->Outstanding(), 3);
    EXPECT_EQ(disk.failed(), 2);
  }
  options_.disk = nullptr;
  std::vector<std::string> replayed;
  for (const Replayed& one : ReadReplayed(Open())) replayed.push_back(one.record.json);
  // At least once: what the failed rounds wrote before failing may come
  // back too (PostHog deduplicates by uuid); what was acknowledged must.
  EXPECT_THAT(replayed, ::testing::IsSupersetOf(
                            {R"({"n":"before0"})", R"({"n":"before1"})", R"({"n":"after0"})"}));
}

TEST_F(SpoolTest, ASegmentThatCannotBeCreatedIsUnavailableAndTheNextRoundTriesAgain) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.segment_bytes = 64 << 10;
  Spool::Opened opened = Open();
  // Fills the first segment: the next round starts another.
  ASSERT_THAT(opened.spool->Append({{"demo", false, std::string(70 << 10, 'x')}}),
              test_support::IsOk());

  disk.FailOpens(1, EACCES);
  EXPECT_THAT(opened.spool->Append(Records(1, "refused")),
              test_support::StatusIs(absl::StatusCode::kUnavailable,
                                     ::testing::AllOf(::testing::HasSubstr("cannot create"),
                                                      ::testing::HasSubstr("Permission denied"))));
  EXPECT_EQ(disk.failed(), 1);

  ASSERT_THAT(opened.spool->Append(Records(2, "kept")), test_support::IsOk());
  EXPECT_TRUE(opened.spool->Writable());
  opened.spool.reset();
  options_.disk = nullptr;
  std::vector<std::string> replayed;
  for (const Replayed& one : ReadReplayed(Open())) replayed.push_back(one.record.json);
  EXPECT_THAT(replayed, ::testing::IsSupersetOf({R"({"n":"kept0"})", R"({"n":"kept1"})"}));
  EXPECT_THAT(replayed, ::testing::Not(::testing::Contains(R"({"n":"refused0"})")));
}

// Collects AppendAsync outcomes by name, in the order they complete.
class Outcomes {
 public:
  Spool::AppendDone For(std::string name) {
    return [this, name = std::move(name)](absl::StatusOr<SpoolLocation> location) {
      absl::MutexLock lock(&mu_);
      order_.push_back(name);
      outcomes_.emplace(name, location.status());
    };
  }
  void AwaitCount(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return order_.size() >= count; };
    mu_.Await(absl::Condition(&enough));
  }
  std::vector<std::string> order() {
    absl::MutexLock lock(&mu_);
    return order_;
  }
  absl::Status status(const std::string& name) {
    absl::MutexLock lock(&mu_);
    return outcomes_.at(name);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> outcomes_ ABSL_GUARDED_BY(mu_);
};

// Overlapped group commit: while group 1's fdatasync runs, group 2 is
// written and its own sync starts; group 2 is acknowledged only after group
// 1's sync returned, even when its own sync returns first.
TEST_F(SpoolTest, TheNextGroupSyncsWhileOneSyncsAndIsAcknowledgedAfterIt) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.overlap_min_appends = 1;  // Each append overlaps the sync under way.
  Spool::Opened opened = Open();
  Outcomes outcomes;
  bool first_synced_before_second_acked = false;
  disk.HoldSyncs();
  opened.spool->AppendAsync(Records(2, "one"), outcomes.For("one"));
  disk.AwaitHeldSyncs(1);  // Group 1 is syncing.
  opened.spool->AppendAsync(Records(3, "two"), [&, done = outcomes.For("two")](
                                                   absl::StatusOr<SpoolLocation> location) mutable {
    first_synced_before_second_acked = disk.SyncReturned(0);
    done(std::move(location));
  });
  // Group 2 was written and its sync started while group 1's still runs.
  disk.AwaitHeldSyncs(2);

  disk.ReleaseSync(1, 0);  // Group 2's sync returns first.
  // Time for a wrong acknowledgement to show (nothing waits on it).
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(outcomes.order(), ::testing::IsEmpty());
  disk.ReleaseSync(0, 0);
  outcomes.AwaitCount(2);

  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("one", "two"));
  EXPECT_TRUE(first_synced_before_second_acked);
  EXPECT_THAT(outcomes.status("one"), test_support::IsOk());
  EXPECT_THAT(outcomes.status("two"), test_support::IsOk());
  EXPECT_EQ(opened.spool->Outstanding(), 5);
  opened.spool.reset();
  options_.disk = nullptr;
  std::vector<std::string> replayed;
  for (const Replayed& one : ReadReplayed(Open())) replayed.push_back(one.record.json);
  EXPECT_THAT(replayed,
              ::testing::ElementsAre(R"({"n":"one0"})", R"({"n":"one1"})", R"({"n":"two0"})",
                                     R"({"n":"two1"})", R"({"n":"two2"})"));
}

// A failed sync fails its group and the group written after it into the same
// segment (their records follow the failed ones), even though that group's
// own sync returned; the group synced before it stays acknowledged, and the
// next group starts a new segment and succeeds.
TEST_F(SpoolTest, AFailedSyncFailsItsGroupAndTheOverlappingLaterOneNotTheEarlierOne) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.overlap_min_appends = 1;  // Each append overlaps the sync under way.
  {
    Spool::Opened opened = Open();
    ASSERT_THAT(opened.spool->Append(Records(1, "zero")), test_support::IsOk());
    Outcomes outcomes;
    disk.HoldSyncs();
    opened.spool->AppendAsync(Records(2, "one"), outcomes.For("one"));
    disk.AwaitHeldSyncs(1);
    opened.spool->AppendAsync(Records(2, "two"), outcomes.For("two"));
    disk.AwaitHeldSyncs(2);
    disk.ReleaseSync(1, 0);
    disk.ReleaseSync(0, EIO);
    outcomes.AwaitCount(2);

    EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("one", "two"));
    EXPECT_THAT(
        outcomes.status("one"),
        test_support::StatusIs(absl::StatusCode::kUnavailable,
                               ::testing::AllOf(::testing::HasSubstr("cannot sync"),
                                                ::testing::HasSubstr("Input/output error"))));
    EXPECT_THAT(outcomes.status("two"),
                test_support::StatusIs(absl::StatusCode::kUnavailable,
                                       ::testing::HasSubstr("Input/output error")));
    EXPECT_FALSE(opened.spool->Writable());
    EXPECT_EQ(opened.spool->Outstanding(), 1);

    // Syncs still wait: the next group's is ticket 2.
    opened.spool->AppendAsync(Records(1, "three"), outcomes.For("three"));
    disk.AwaitHeldSyncs(3);
    disk.ReleaseSync(2, 0);
    outcomes.AwaitCount(3);
    EXPECT_THAT(outcomes.status("three"), test_support::IsOk());
    EXPECT_TRUE(opened.spool->Writable());
    EXPECT_EQ(opened.spool->Outstanding(), 2);
  }
  options_.disk = nullptr;
  std::vector<std::string> replayed;
  for (const Replayed& one : ReadReplayed(Open())) replayed.push_back(one.record.json);
  EXPECT_THAT(replayed, ::testing::IsSupersetOf({R"({"n":"zero0"})", R"({"n":"three0"})"}));
}

// The other way round: the later group's sync fails while the earlier one's
// succeeds. Only the later group is refused.
TEST_F(SpoolTest, AFailedSyncOfTheLaterGroupLeavesTheEarlierOneAcknowledged) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.overlap_min_appends = 1;  // Each append overlaps the sync under way.
  Spool::Opened opened = Open();
  Outcomes outcomes;
  disk.HoldSyncs();
  opened.spool->AppendAsync(Records(2, "one"), outcomes.For("one"));
  disk.AwaitHeldSyncs(1);
  opened.spool->AppendAsync(Records(2, "two"), outcomes.For("two"));
  disk.AwaitHeldSyncs(2);
  disk.ReleaseSync(1, EIO);
  disk.ReleaseSync(0, 0);
  outcomes.AwaitCount(2);

  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("one", "two"));
  EXPECT_THAT(outcomes.status("one"), test_support::IsOk());
  EXPECT_THAT(outcomes.status("two"), test_support::StatusIs(absl::StatusCode::kUnavailable,
                                                             ::testing::HasSubstr("cannot sync")));
  EXPECT_EQ(opened.spool->Outstanding(), 2);
}

// With more than two committers, a third group syncs while the first two
// do, and the three complete in the order they were written whatever the
// order their syncs return in.
TEST_F(SpoolTest, ThreeGroupsSyncAtOnceAndCompleteInWriteOrder) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.max_syncs_in_flight = 3;
  options_.overlap_min_appends = 1;
  Spool::Opened opened = Open();
  Outcomes outcomes;
  disk.HoldSyncs();
  opened.spool->AppendAsync(Records(1, "one"), outcomes.For("one"));
  disk.AwaitHeldSyncs(1);
  opened.spool->AppendAsync(Records(2, "two"), outcomes.For("two"));
  disk.AwaitHeldSyncs(2);
  opened.spool->AppendAsync(Records(1, "three"), outcomes.For("three"));
  disk.AwaitHeldSyncs(3);  // Three syncs under way at once.

  disk.ReleaseSync(2, 0);
  disk.ReleaseSync(1, 0);
  // Time for a wrong acknowledgement to show (nothing waits on it).
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(outcomes.order(), ::testing::IsEmpty());
  disk.ReleaseSync(0, 0);
  outcomes.AwaitCount(3);
  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("one", "two", "three"));
  EXPECT_EQ(opened.spool->Outstanding(), 4);
}

// Below `overlap_min_appends`, callers arriving while a group syncs wait for
// that sync and then share one group (one sync) instead of starting a sync
// each; once that many wait, the next group overlaps the sync under way.
TEST_F(SpoolTest, FewCallersWaitForTheSyncUnderWayAndShareTheNextOne) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.overlap_min_appends = 3;
  Spool::Opened opened = Open();
  Outcomes outcomes;
  disk.HoldSyncs();
  opened.spool->AppendAsync(Records(1, "a"), outcomes.For("a"));
  disk.AwaitHeldSyncs(1);  // Group 1 syncs.
  opened.spool->AppendAsync(Records(2, "b"), outcomes.For("b"));
  opened.spool->AppendAsync(Records(1, "c"), outcomes.For("c"));
  // Time for a wrong second sync to start (nothing waits on it).
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(disk.HeldSyncs(), 1);

  disk.ReleaseSync(0, 0);
  outcomes.AwaitCount(1);
  disk.AwaitHeldSyncs(2);  // b and c, together.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(disk.HeldSyncs(), 2);
  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("a"));

  // Three callers while that sync runs: the third starts a group at once.
  opened.spool->AppendAsync(Records(1, "d"), outcomes.For("d"));
  opened.spool->AppendAsync(Records(1, "e"), outcomes.For("e"));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(disk.HeldSyncs(), 2);
  opened.spool->AppendAsync(Records(1, "f"), outcomes.For("f"));
  disk.AwaitHeldSyncs(3);
  disk.ReleaseSync(2, 0);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("a"));  // Still after b and c.
  disk.ReleaseSync(1, 0);
  outcomes.AwaitCount(6);
  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("a", "b", "c", "d", "e", "f"));
  for (const char* name : {"a", "b", "c", "d", "e", "f"}) {
    EXPECT_THAT(outcomes.status(name), test_support::IsOk()) << name;
  }
  EXPECT_EQ(opened.spool->Outstanding(), 7);
}

// The committer whose sync returned takes what was queued meanwhile (fewer
// than `overlap_min_appends`) once it has completed its group: an append
// arriving while it runs the group's callbacks wakes no other committer (that
// cost a wake-up and a sleep per group and synced nothing sooner). Enough
// appends still start a group of their own at once.
TEST_F(SpoolTest, AnAppendQueuedWhileAGroupCompletesWaitsForThatGroupsCommitter) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.max_syncs_in_flight = 4;
  options_.overlap_min_appends = 2;
  Spool::Opened opened = Open();
  Outcomes outcomes;
  absl::Notification in_callback;
  absl::Notification leave_callback;
  disk.HoldSyncs();
  opened.spool->AppendAsync(Records(1, "one"), [&, done = outcomes.For("one")](
                                                   absl::StatusOr<SpoolLocation> location) mutable {
    done(std::move(location));
    in_callback.Notify();
    leave_callback.WaitForNotification();
  });
  disk.AwaitHeldSyncs(1);
  disk.ReleaseSync(0, 0);
  in_callback.WaitForNotification();  // Group 1's committer runs its callback.

  opened.spool->AppendAsync(Records(1, "two"), outcomes.For("two"));
  // Time for a wrong sync to start (nothing waits on it).
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(disk.HeldSyncs(), 1);

  // A second waiting append reaches the threshold: another committer takes
  // both while the callback still runs.
  opened.spool->AppendAsync(Records(2, "three"), outcomes.For("three"));
  disk.AwaitHeldSyncs(2);
  disk.ReleaseSync(1, 0);
  leave_callback.Notify();
  outcomes.AwaitCount(3);
  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("one", "two", "three"));
  for (const char* name : {"one", "two", "three"}) {
    EXPECT_THAT(outcomes.status(name), test_support::IsOk()) << name;
  }
  EXPECT_EQ(opened.spool->Outstanding(), 4);

  // With nothing else queued, the next append is synced by whichever
  // committer is free.
  opened.spool->AppendAsync(Records(1, "four"), outcomes.For("four"));
  disk.AwaitHeldSyncs(3);
  disk.ReleaseSync(2, 0);
  outcomes.AwaitCount(4);
  EXPECT_THAT(outcomes.status("four"), test_support::IsOk());
}

// One large append (a stream's message) is worth a sync of its own: it
// overlaps the sync under way however few callers wait.
TEST_F(SpoolTest, ALargeAppendOverlapsTheSyncUnderWay) {
  test_support::FaultySpoolDisk disk;
  options_.disk = &disk;
  options_.overlap_min_appends = 100;
  options_.overlap_min_bytes = 4 << 10;
  Spool::Opened opened = Open();
  Outcomes outcomes;
  disk.HoldSyncs();
  opened.spool->AppendAsync(Records(1, "small"), outcomes.For("small"));
  disk.AwaitHeldSyncs(1);
  opened.spool->AppendAsync({{"demo", false, std::string(5 << 10, 'x')}}, outcomes.For("large"));
  disk.AwaitHeldSyncs(2);
  disk.ReleaseSync(1, 0);
  disk.ReleaseSync(0, 0);
  outcomes.AwaitCount(2);
  EXPECT_THAT(outcomes.order(), ::testing::ElementsAre("small", "large"));
  EXPECT_THAT(outcomes.status("large"), test_support::IsOk());
}

TEST(SpoolFormatTest, RecordIsLengthZlibCrc32AndPayload) {
  // The layout of spool.h, with zlib's CRC-32: segments written before the
  // checksum moved to libdeflate still replay.
  const SpoolRecord record{"proj", true, R"({"event":"e"})"};
  const std::string encoded = Spool::EncodeRecord(record);
  std::string payload = std::string("\x01\x04\x00", 3) + "proj" + record.json;
  ASSERT_EQ(encoded.size(), 8 + payload.size());
  const auto u32 = [&](size_t at) {
    uint32_t value = 0;
    for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(encoded[at + i]);
    return value;
  };
  EXPECT_EQ(u32(0), payload.size());
  EXPECT_EQ(u32(4), static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(payload.data()),
                                                static_cast<uInt>(payload.size()))));
  EXPECT_EQ(encoded.substr(8), payload);
}

}  // namespace
}  // namespace posthog_gateway
