#ifndef SERVER_CAPTURE_SPOOL_H_
#define SERVER_CAPTURE_SPOOL_H_

// Spool keeps every acknowledged event on local disk until PostHog accepted
// it, so that a crash, a restart or a PostHog outage loses nothing.
//
// On disk: a directory of append-only segment files `segment-<n>.log`. A
// record is
//
//   u32 length | u32 crc32(payload) | payload
//   payload = u8 flags (bit 0: historical_migration) | u16 project length |
//             project alias | event JSON
//
// little-endian. Appends go through one writer thread that writes everything
// queued since its last round and then calls fdatasync once (group commit):
// many concurrent callers share one sync. Append returns only after the
// records are synced.
//
// Segments are preallocated: a background thread keeps one spare file of
// `segment_bytes` zeros, written and synced, which the writer renames into
// place when it starts a segment (the first one is prepared by Open). Writes
// then overwrite blocks that already exist inside the file's size, so each
// fdatasync flushes data only, without the journal commit an append's new
// size and blocks need: on this project's VM disk that halves a sync's time
// and CPU. The zeros after the last record end a segment; a record torn by a
// crash before them is damage like any other. When no spare is ready (the
// disk is full, or segments fill faster than they are prepared) a segment
// starts empty and grows as before. Disk use is therefore the spooled bytes
// plus up to two segments' unused tails.
//
// Each record is released (Release) once PostHog accepted it; a segment that
// is no longer written to and whose records are all released is deleted.
// Releases are written down in the segment's release log
// (`segment-<n>.released`: the offsets of its released records, u64 each)
// with write(2) and no sync, so a restart, even after the process crashed,
// sends none of them again; only an OS crash can lose the last entries, and
// those records are then sent again with the same uuid, which PostHog
// deduplicates (at least once, never lost).
// The total size of the segments is bounded: an Append that would exceed
// `max_bytes` is RESOURCE_EXHAUSTED with a RetryInfo, and nothing already
// spooled is ever dropped to make room.
//
// Open replays the directory: it checks every segment and returns where its
// intact records are (runs of adjacent records of one project, in order;
// read them back with Read), so that a full spool is not loaded into memory
// at start-up. Damage (a checksum mismatch, a truncated record) is skipped
// up to the next intact record and reported.
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/capture/spool_disk.h"

namespace posthog_gateway {

struct SpoolOptions {
  std::string dir;
  int64_t max_bytes = int64_t{1} << 30;
  int64_t segment_bytes = 16 << 20;
  // How segments are created, written, synced and renamed; null: the real
  // disk. Borrowed: must outlive the spool.
  SpoolDisk* disk = nullptr;
};

// One event as the spool stores it.
struct SpoolRecord {
  std::string project;
  bool historical_migration = false;
  std::string json;
};

// What a spooled record is released with: the segment holding it.
using SegmentId = uint64_t;

// Where one Append's records are: all in one segment, contiguous.
struct SpoolLocation {
  SegmentId segment = 0;
  int64_t offset = 0;
  int64_t bytes = 0;
  int64_t count = 0;
};

// One spooled record, for Release: its segment and where it starts.
struct RecordRef {
  SegmentId segment = 0;
  int64_t offset = 0;
};

// Adjacent intact records of one project found by Open, in one segment;
// Read(location) returns them. Each record must be Released.
struct ReplayedRun {
  std::string project;
  SpoolLocation location;
};

class Spool final {
 public:
  struct Opened {
    std::unique_ptr<Spool> spool;
    // Where the intact records found on disk are, oldest first.
    std::vector<ReplayedRun> replayed;
    // How many records the runs hold.
    int64_t replayed_records = 0;
    // Segments with damage (bad checksum, truncated record, bad length).
    int64_t damaged_segments = 0;
    // Bytes skipped past the damage.
    int64_t damaged_bytes = 0;
  };

  // Open creates `options.dir` if needed and replays it.
  static absl::StatusOr<Opened> Open(const SpoolOptions& options);

  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Append writes `records` and returns once they are synced to disk, with
  // where they are (one segment). RESOURCE_EXHAUSTED (with RetryInfo) when
  // the spool is full; UNAVAILABLE when the disk failed.
  absl::StatusOr<SpoolLocation> Append(const std::vector<SpoolRecord>& records);

  // AppendDone receives the outcome of an AppendAsync.
  using AppendDone = std::function<void(absl::StatusOr<SpoolLocation>)>;

  // AppendAsync is Append without the wait: `done` runs once the records are
  // synced (on the spool's writer thread, which it must not block: the next
  // group waits for it) or at once, on the caller's thread, when they are
  // refused. `records` need not outlive the call.
  void AppendAsync(const std::vector<SpoolRecord>& records, AppendDone done);

  // Read reads back the records of one Append or one replayed run (not yet
  // all released), so that a backlog need not stay in memory.
  absl::StatusOr<std::vector<SpoolRecord>> Read(const SpoolLocation& location) const;

  // Release marks records delivered (or dead-lettered): see the file comment.
  void Release(const std::vector<RecordRef>& records);

  // RecordOffsets returns where each of `records`, stored together at
  // `location` (one Append, one Read), starts.
  static std::vector<int64_t> RecordOffsets(const SpoolLocation& location,
                                            const std::vector<SpoolRecord>& records);

  // Size in bytes of the segments on disk and being written.
  int64_t bytes() const;

  // Outstanding is the number of records appended or replayed and not yet
  // released: events PostHog has not accepted yet.
  int64_t Outstanding() const;

  // Writable is whether the spool can take events: its directory is
  // writable and the last write round did not fail (for readiness).
  bool Writable() const;

  // EncodeRecord returns the on-disk bytes of one record (for tests).
  static std::string EncodeRecord(const SpoolRecord& record);

 private:
  struct Segment {
    int64_t bytes = 0;
    int64_t outstanding = 0;
    bool open_for_writing = false;
    // The release log, opened at the first Release; -1 until then.
    int release_log = -1;
  };
  struct Pending {
    std::string bytes;
    int64_t count = 0;
    // Filled by the writer before it notifies `synced`. The caller waits on
    // the notification, not on mu_: a group's callers wake at once instead
    // of one after another through the mutex.
    absl::Status status;
    SpoolLocation location;
    absl::Notification synced;
    // Set by AppendAsync: called instead of notifying, then the Pending is
    // deleted by the writer.
    AppendDone done;
  };

  explicit Spool(SpoolOptions options);
  // Encodes `records` into `pending` and queues it for the writer, or says
  // why not (full, stopping).
  absl::Status Enqueue(const std::vector<SpoolRecord>& records, Pending* pending);
  void WriterLoop();
  // Keeps a spare segment ready (see the file comment).
  void PreparerLoop();
  // Writes `segment_bytes` zeros to the spare's path and syncs them; gives
  // up (CANCELLED) once the spool is being destroyed.
  absl::Status PrepareSpare() const;
  std::string SparePath() const;
  // Opens a new segment file for writing: the spare, renamed, when ready.
  absl::Status RollSegment() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeDeleteSegment(SegmentId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string SegmentPath(SegmentId id) const;
  std::string ReleaseLogPath(SegmentId id) const;

  const SpoolOptions options_;
  SpoolDisk* const disk_;
  // Set when a write round fails, cleared when one succeeds.
  std::atomic<bool> write_failed_{false};
  mutable absl::Mutex mu_;
  std::map<SegmentId, Segment> segments_ ABSL_GUARDED_BY(mu_);
  SegmentId next_segment_ ABSL_GUARDED_BY(mu_) = 1;
  SegmentId current_ ABSL_GUARDED_BY(mu_) = 0;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  // Bytes on disk plus bytes queued for the writer.
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Whether SparePath() holds a prepared segment.
  bool spare_ready_ ABSL_GUARDED_BY(mu_) = false;
  // Set by the destructor: a spare being written (segments may be GiBs) is
  // abandoned rather than finished.
  std::atomic<bool> abandon_spare_{false};
  std::thread writer_;
  std::thread preparer_;
};

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_SPOOL_H_
