#ifndef SERVER_CAPTURE_SPOOL_H_
#define SERVER_CAPTURE_SPOOL_H_

// Spool keeps every acknowledged event on local disk until PostHog accepted
// it, so that a crash, a restart or a PostHog outage loses nothing.
//
// On disk: a directory of append-only segment files `segment-<n>.log` of
// records in RecordBlock's format (record_block.h):
//
//   u32 length | u32 crc32(payload) | payload
//   payload = u8 flags (bit 0: historical_migration) | u16 project length |
//             project alias | event JSON
//
// little-endian. An append is a RecordBlock, encoded by the caller and
// written as it is; the spool keeps a reference to it until it is written.
// Appends go through committer threads: a free committer
// takes everything queued as one group, writes it with one pwritev and calls
// fdatasync once for it (group commit: many concurrent callers share one
// sync). Group commits overlap: while one committer's fdatasync runs, the
// callers arriving meanwhile form the next group, which another committer
// writes and syncs at once (`max_syncs_in_flight` committers) instead of
// waiting a whole sync before it may start, once enough is queued for it
// (`overlap_min_appends` callers or `overlap_min_bytes`). Below that the
// callers wait for the running sync to return and then share the next one,
// which the committer whose sync returned takes once it has completed its
// group (waking another committer for them cost two context switches per
// group, and synced them no sooner):
// on this project's VM each sync costs 70-90 us of CPU and a few context
// switches, so a second sync for one or two callers made a durable unary
// call cost more CPU, and at 16 callers (where the CPU, not the disk, is
// the limit) fewer calls per second, than waiting for the sync under way.
// When syncs are slow (a busy disk) or callers many, the queue reaches the
// threshold during a sync and groups overlap as before. Groups are written
// in order.
// Each committer syncs through its own open file description of the segment,
// so a writeback error is reported to every sync it may concern, not only to
// the first one that looks (errseq semantics).
//
// Groups complete in the order they were written, all of a group's calls
// together, from one thread: a group's calls are acknowledged only once its
// own sync and the syncs of every group before it returned. A group whose
// write or sync failed is refused (UNAVAILABLE), and so is every later group
// written into the same segment before the failure was seen (their records
// follow the failed ones in the file); earlier groups are judged by their own
// syncs. The next group starts a new segment. Append returns only after the
// records are synced.
//
// Segments are preallocated: a background thread keeps one spare file of
// `segment_bytes` zeros, written and synced, which a committer renames into
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

#include <algorithm>
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
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/capture/record_block.h"
#include "server/capture/spool_disk.h"

namespace posthog_gateway {

struct SpoolOptions {
  std::string dir;
  int64_t max_bytes = int64_t{1} << 30;
  int64_t segment_bytes = 16 << 20;
  // How segments are created, written, synced and renamed; null: the real
  // disk. Borrowed: must outlive the spool.
  SpoolDisk* disk = nullptr;
  // How many groups may be syncing at once: the committer threads (see the
  // file comment); 1 makes each group wait for the previous sync and its
  // callbacks, as a plain group commit does. Four: while other work writes
  // to this project's VM disk a sync's p90 reaches 4 ms, and four syncs at
  // once sustain about three times the syncs per second of two; with
  // `overlap_min_appends` the third and fourth start only when that many
  // callers wait, so they cost nothing when syncs are quick.
  int max_syncs_in_flight = 4;
  // While a group syncs, the next one starts at once only when this many
  // appends, or `overlap_min_bytes`, are queued; fewer wait for the sync to
  // return and then join one group (see the file comment). 1: an idle
  // committer always takes what is queued.
  int overlap_min_appends = 8;
  int64_t overlap_min_bytes = 64 << 10;
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

  // Append writes `block`'s records and returns once they are synced to
  // disk, with where they are (one segment, contiguous: record i at
  // `offset + block->offset(i)`). RESOURCE_EXHAUSTED (with RetryInfo) when
  // the spool is full; UNAVAILABLE when the disk failed.
  absl::StatusOr<SpoolLocation> Append(std::shared_ptr<const RecordBlock> block);
  // The same for `records`, encoded into a block first.
  absl::StatusOr<SpoolLocation> Append(const std::vector<SpoolRecord>& records);

  // AppendDone receives the outcome of an AppendAsync. Move-only, so that
  // a caller's callback owns what it keeps until the sync (no shared_ptr,
  // no copy): called once.
  using AppendDone = absl::AnyInvocable<void(absl::StatusOr<SpoolLocation>)>;

  // AppendAsync is Append without the wait: `done` runs once the records are
  // synced (on the spool's thread that completes groups, one group's calls
  // one after another; it must not block: later groups wait for it) or at
  // once, on the caller's thread, when they are refused. The spool holds
  // `block` until then (the caller may keep it: it is not changed).
  void AppendAsync(std::shared_ptr<const RecordBlock> block, AppendDone done);
  // The same for `records`, encoded into a block first.
  void AppendAsync(const std::vector<SpoolRecord>& records, AppendDone done);

  // ReadBlock reads back the records of one Append or one replayed run (not
  // yet all released), so that a backlog need not stay in memory: one
  // buffer of the bytes read, each record checked (DATA_LOSS when one
  // changed on disk).
  absl::StatusOr<std::shared_ptr<const RecordBlock>> ReadBlock(const SpoolLocation& location) const;
  // Read is ReadBlock with each record copied out.
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
    // Bytes of acknowledged records (and of replayed ones).
    int64_t bytes = 0;
    // Where the next group is written: `bytes` plus what is in flight or failed.
    int64_t written = 0;
    int64_t outstanding = 0;
    // Groups written to it and not completed yet: it is not deleted meanwhile.
    int64_t in_flight = 0;
    bool open_for_writing = false;
    // The release log, opened at the first Release; -1 until then.
    int release_log = -1;
  };
  // The open files of the segment being written: the one writes go through,
  // and one per committer to sync (see the file comment). Closed once writes
  // moved on to another segment and the
  // last group written to it completed.
  struct SegmentFiles {
    ~SegmentFiles();
    SegmentId id = 0;
    int write_fd = -1;
    // One per committer.
    std::vector<int> sync_fds;
    // The first group of this segment whose write or sync failed, and why:
    // the groups after it in the segment fail with it.
    uint64_t failed_from = UINT64_MAX;
    absl::Status failure;
  };
  struct Pending {
    // The records, as written.
    std::shared_ptr<const RecordBlock> block;
    int64_t bytes() const { return static_cast<int64_t>(block->bytes().size()); }
    // Filled by the spool before it notifies `synced`. The caller waits on
    // the notification, not on mu_: a group's callers wake at once instead
    // of one after another through the mutex.
    absl::Status status;
    SpoolLocation location;
    absl::Notification synced;
    // Set by AppendAsync: called instead of notifying, then the Pending is
    // deleted by the spool.
    AppendDone done;
  };
  // One group commit: the rounds' appends written together, synced by one
  // fdatasync.
  struct Group {
    uint64_t sequence = 0;
    std::deque<Pending*> pendings;
    std::shared_ptr<SegmentFiles> files;
    int64_t offset = 0;
    int64_t bytes = 0;
    // Its write or sync returned, with `status`.
    bool finished = false;
    absl::Status status;
  };

  explicit Spool(SpoolOptions options);
  // Queues `pending` (its block set) for the committers, or says why not
  // (full, stopping).
  absl::Status Enqueue(Pending* pending);
  int committers() const { return std::max(1, options_.max_syncs_in_flight); }
  // Takes, writes and syncs groups; `index` picks its sync file description.
  void CommitterLoop(int index);
  // Records that `group`'s write or sync returned `status`.
  void FinishGroup(Group* group, absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes the finished groups at the head of `in_flight_`, in order,
  // unless another thread is doing so (it then completes these too). Runs
  // their callbacks without the lock; returns with it held.
  void CompleteFinishedGroups() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Settles one group's accounting as it completes: its records become
  // outstanding, or their bytes are given back.
  void SettleGroup(Group* group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  // The files of `current_`; null when the next group must start a segment
  // (at start, after a failure).
  std::shared_ptr<SegmentFiles> files_ ABSL_GUARDED_BY(mu_);
  // Bytes on disk plus bytes queued for the committers.
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  // The bytes of `queue_`.
  int64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Groups taken by a committer whose write or sync has not returned yet.
  int syncing_ ABSL_GUARDED_BY(mu_) = 0;
  // Committers whose write or sync returned and that complete groups before
  // coming back for the queue (see CommitterLoop).
  int returning_ ABSL_GUARDED_BY(mu_) = 0;
  // Groups written or being written, in order, until completed.
  std::deque<Group*> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // The sequence number of the next group to be written.
  uint64_t next_write_ ABSL_GUARDED_BY(mu_) = 0;
  // Whether a thread is completing groups (CompleteFinishedGroups).
  bool completing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Whether SparePath() holds a prepared segment.
  bool spare_ready_ ABSL_GUARDED_BY(mu_) = false;
  // Set by the destructor: a spare being written (segments may be GiBs) is
  // abandoned rather than finished.
  std::atomic<bool> abandon_spare_{false};
  std::vector<std::thread> committers_;
  std::thread preparer_;
};

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_SPOOL_H_
