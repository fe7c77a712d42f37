#include "server/capture/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

void PutU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat("spool: ", what, " ", path, ": ", std::strerror(errno)));
}

// WriteAll writes `chunks` in order at `offset` of `fd`, with as few
// pwritev(2) calls as IOV_MAX allows (a round of a hundred callers' records
// is one call, not a hundred), continuing after short writes. False, with
// errno set, on failure.
bool WriteAll(SpoolDisk* disk, int fd, int64_t offset, std::vector<iovec> chunks) {
  size_t next = 0;
  while (true) {
    while (next < chunks.size() && chunks[next].iov_len == 0) ++next;
    if (next == chunks.size()) return true;
    const int count = static_cast<int>(std::min<size_t>(chunks.size() - next, IOV_MAX));
    const ssize_t written = disk->WriteAt(fd, &chunks[next], count, offset);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    offset += written;
    for (size_t left = static_cast<size_t>(written); left > 0;) {
      iovec& chunk = chunks[next];
      const size_t step = std::min(left, chunk.iov_len);
      chunk.iov_base = static_cast<char*>(chunk.iov_base) + step;
      chunk.iov_len -= step;
      left -= step;
      if (chunk.iov_len == 0) ++next;
    }
  }
}

// The offsets a release log holds; a torn last entry is ignored.
absl::flat_hash_set<int64_t> ReadReleaseLog(const std::string& path) {
  absl::flat_hash_set<int64_t> offsets;
  std::ifstream file(path, std::ios::binary);
  char entry[8];
  while (file.read(entry, sizeof(entry))) {
    uint64_t offset = 0;
    for (int i = 7; i >= 0; --i) offset = (offset << 8) | static_cast<unsigned char>(entry[i]);
    offsets.insert(static_cast<int64_t>(offset));
  }
  return offsets;
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus("cannot open", dir);
  const int result = ::fsync(fd);
  ::close(fd);
  if (result != 0) return ErrnoStatus("cannot sync", dir);
  return absl::OkStatus();
}

absl::Status MakeDirectories(const std::string& dir) {
  // Each prefix ending before a '/', then the whole path.
  for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    const std::string path = dir.substr(0, end);
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create", path);
    }
    if (end == std::string::npos) break;
  }
  return absl::OkStatus();
}

struct ParsedSegment {
  // Each intact record's project (a view into the segment's data), where it
  // starts and its size on disk.
  std::vector<absl::string_view> projects;
  std::vector<std::pair<size_t, size_t>> spans;
  bool damaged = false;
  int64_t damaged_bytes = 0;
  // Where the data ends: the preallocated zeros after it are not counted.
  int64_t bytes = 0;
};

// A replayed run closes at this many records or bytes, so that reading one
// back into memory stays small.
constexpr int64_t kMaxRunRecords = 1000;
constexpr int64_t kMaxRunBytes = 1 << 20;

// ParseSegment reads every intact record of a segment, up to the zeros that
// end a preallocated one. Damage (a flipped byte, a torn write, a truncated
// tail) skips to the next offset where an intact record starts, so records
// after the damage are kept; the CRC-32 of each record makes a false start
// vanishingly unlikely. Every record's header has a non-zero byte (its
// length is at least 3), so none starts inside the trailing zeros.
ParsedSegment ParseSegment(absl::string_view data) {
  ParsedSegment out;
  const size_t last_non_zero = data.find_last_not_of('\0');
  const size_t end = last_non_zero == absl::string_view::npos ? 0 : last_non_zero + 1;
  size_t pos = 0;
  while (pos < end) {
    if (const size_t size = RecordBlock::RecordSizeAt(data, pos); size > 0) {
      out.projects.push_back(RecordBlock::ProjectAt(data, pos));
      out.spans.emplace_back(pos, size);
      pos += size;  // May pass `end`: a record's own last bytes may be zeros.
      continue;
    }
    size_t next = pos + 1;
    while (next < end && RecordBlock::RecordSizeAt(data, next) == 0) ++next;
    out.damaged = true;
    out.damaged_bytes += static_cast<int64_t>(next - pos);
    pos = next;
  }
  out.bytes = static_cast<int64_t>(std::max(pos, end));
  return out;
}

// Block encodes `records` into one RecordBlock.
std::shared_ptr<const RecordBlock> Block(const std::vector<SpoolRecord>& records) {
  auto block = std::make_shared<RecordBlock>();
  size_t bytes = 0;
  for (const SpoolRecord& record : records) {
    bytes += RecordBlock::RecordBytes(record.project, record.json);
  }
  block->Reserve(bytes, records.size());
  for (const SpoolRecord& record : records) {
    block->Add(record.project, record.historical_migration, record.json);
  }
  return block;
}

// Names the calling thread, so that /proc and perf tell the spool's threads
// from gRPC's and the rest (bench/capture/run.sh counts context switches and
// CPU per thread kind). At most 15 characters.
void NameThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace

std::string Spool::EncodeRecord(const SpoolRecord& record) {
  RecordBlock block;
  block.Add(record.project, record.historical_migration, record.json);
  return std::string(block.bytes());
}

Spool::Spool(SpoolOptions options)
    : options_(std::move(options)),
      disk_(options_.disk != nullptr ? options_.disk : PosixSpoolDisk()) {}

Spool::SegmentFiles::~SegmentFiles() {
  if (write_fd >= 0) ::close(write_fd);
  for (int fd : sync_fds) {
    if (fd >= 0) ::close(fd);
  }
}

std::string Spool::SegmentPath(SegmentId id) const {
  return absl::StrFormat("%s/segment-%020d.log", options_.dir, id);
}

std::string Spool::ReleaseLogPath(SegmentId id) const {
  return absl::StrFormat("%s/segment-%020d.released", options_.dir, id);
}

std::vector<int64_t> Spool::RecordOffsets(const SpoolLocation& location,
                                          const std::vector<SpoolRecord>& records) {
  std::vector<int64_t> offsets;
  offsets.reserve(records.size());
  int64_t offset = location.offset;
  for (const SpoolRecord& record : records) {
    offsets.push_back(offset);
    offset += static_cast<int64_t>(RecordBlock::RecordBytes(record.project, record.json));
  }
  return offsets;
}

std::string Spool::SparePath() const { return absl::StrCat(options_.dir, "/spare-segment.tmp"); }

absl::Status Spool::PrepareSpare() const {
  const std::string path = SparePath();
  const int fd = disk_->Open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot create", path);
  std::string zeros(1 << 20, '\0');
  bool ok = true;
  for (int64_t offset = 0; ok && offset < options_.segment_bytes;) {
    if (abandon_spare_.load(std::memory_order_relaxed)) {
      ::close(fd);
      ::unlink(path.c_str());
      return absl::CancelledError("spool: closing");
    }
    const size_t size =
        static_cast<size_t>(std::min<int64_t>(options_.segment_bytes - offset, zeros.size()));
    const iovec chunk = {zeros.data(), size};
    const ssize_t written = disk_->WriteAt(fd, &chunk, 1, offset);
    if (written < 0 && errno == EINTR) continue;
    ok = written > 0;
    if (ok) offset += written;
  }
  ok = ok && disk_->DataSync(fd) == 0;
  absl::Status status = ok ? absl::OkStatus() : ErrnoStatus("cannot prepare", path);
  ::close(fd);
  if (!ok) ::unlink(path.c_str());
  return status;
}

void Spool::PreparerLoop() {
  NameThread("spool-prepare");
  auto needed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !spare_ready_; };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&needed));
      if (stopping_) return;
    }
    absl::Status prepared = PrepareSpare();
    absl::MutexLock lock(&mu_);
    if (stopping_) return;  // A spare left behind is removed by the next Open.
    if (prepared.ok()) {
      spare_ready_ = true;
      continue;
    }
    // Segments start empty meanwhile (slower syncs, nothing lost).
    LogWarning("capture spool: cannot preallocate the next segment; retrying in 10 s",
               {{"error", std::string(prepared.message())}});
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(10));
  }
}

absl::StatusOr<Spool::Opened> Spool::Open(const SpoolOptions& options) {
  if (absl::Status made = MakeDirectories(options.dir); !made.ok()) return made;
  std::unique_ptr<Spool> spool(new Spool(options));
  Opened opened;
  std::vector<SegmentId> ids;
  std::vector<SegmentId> release_logs;
  if (DIR* dir = ::opendir(options.dir.c_str()); dir != nullptr) {
    while (const dirent* entry = ::readdir(dir)) {
      absl::string_view name = entry->d_name;
      uint64_t id = 0;
      if (!absl::ConsumePrefix(&name, "segment-")) continue;
      if (absl::ConsumeSuffix(&name, ".log") && absl::SimpleAtoi(name, &id)) {
        ids.push_back(id);
      } else if (absl::ConsumeSuffix(&name, ".released") && absl::SimpleAtoi(name, &id)) {
        release_logs.push_back(id);
      }
    }
    ::closedir(dir);
  } else {
    return ErrnoStatus("cannot list", options.dir);
  }
  std::sort(ids.begin(), ids.end());
  // A spare left by the last run may be half written: start a new one, so
  // that the first segment is preallocated too.
  ::unlink(spool->SparePath().c_str());
  absl::Status prepared = spool->PrepareSpare();
  if (!prepared.ok()) {
    LogWarning("capture spool: cannot preallocate a segment; segments start empty",
               {{"error", std::string(prepared.message())}});
  }
  {
    absl::MutexLock lock(&spool->mu_);
    spool->spare_ready_ = prepared.ok();
    for (SegmentId id : ids) {
      const std::string path = spool->SegmentPath(id);
      std::ifstream file(path, std::ios::binary);
      std::stringstream data;
      data << file.rdbuf();
      if (!file) return ErrnoStatus("cannot read", path);
      const std::string bytes = data.str();
      ParsedSegment parsed = ParseSegment(bytes);
      if (parsed.damaged) {
        ++opened.damaged_segments;
        opened.damaged_bytes += parsed.damaged_bytes;
        LogError("capture spool: damaged segment; its intact records will be delivered",
                 {{"segment", path},
                  {"intact_records", absl::StrCat(parsed.spans.size())},
                  {"damaged_bytes", absl::StrCat(parsed.damaged_bytes)}});
      }
      const absl::flat_hash_set<int64_t> released = ReadReleaseLog(spool->ReleaseLogPath(id));
      Segment& segment = spool->segments_[id];
      segment.bytes = parsed.bytes;
      spool->total_bytes_ += segment.bytes;
      // Runs of adjacent unreleased records of one project; only their
      // places are kept.
      for (size_t k = 0; k < parsed.spans.size(); ++k) {
        const auto [offset, size] = parsed.spans[k];
        if (released.contains(static_cast<int64_t>(offset))) continue;
        ++segment.outstanding;
        ++opened.replayed_records;
        ReplayedRun* run = opened.replayed.empty() ? nullptr : &opened.replayed.back();
        const bool extends =
            run != nullptr && run->location.segment == id && run->project == parsed.projects[k] &&
            run->location.offset + run->location.bytes == static_cast<int64_t>(offset) &&
            run->location.count < kMaxRunRecords && run->location.bytes < kMaxRunBytes;
        if (!extends) {
          opened.replayed.push_back(
              {std::string(parsed.projects[k]), {id, static_cast<int64_t>(offset), 0, 0}});
          run = &opened.replayed.back();
        }
        run->location.bytes += static_cast<int64_t>(size);
        ++run->location.count;
      }
      spool->next_segment_ = id + 1;
      spool->MaybeDeleteSegment(id);
    }
    // Logs whose segment is gone (deleted just before a crash): a new
    // segment may take the id.
    for (SegmentId id : release_logs) {
      if (spool->segments_.count(id) == 0) ::unlink(spool->ReleaseLogPath(id).c_str());
    }
    if (absl::Status rolled = spool->RollSegment(); !rolled.ok()) return rolled;
  }
  for (int i = 0; i < spool->committers(); ++i) {
    spool->committers_.emplace_back([raw = spool.get(), i] { raw->CommitterLoop(i); });
  }
  spool->preparer_ = std::thread([raw = spool.get()] { raw->PreparerLoop(); });
  opened.spool = std::move(spool);
  return opened;
}

Spool::~Spool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  abandon_spare_.store(true, std::memory_order_relaxed);
  // The committers write, sync and complete what is queued first.
  for (std::thread& committer : committers_) committer.join();
  if (preparer_.joinable()) preparer_.join();
  absl::MutexLock lock(&mu_);
  files_.reset();
  for (const auto& [id, segment] : segments_) {
    if (segment.release_log >= 0) ::close(segment.release_log);
  }
}

absl::Status Spool::RollSegment() {
  if (current_ != 0) {
    // Its files close once the groups still syncing in it complete.
    files_.reset();
    segments_[current_].open_for_writing = false;
    MaybeDeleteSegment(current_);
  }
  const SegmentId id = next_segment_++;
  const std::string path = SegmentPath(id);
  // The spare when one is ready (waking the preparer for the next), else an
  // empty file. Either way groups are written at the segment's logical end.
  if (spare_ready_) {
    spare_ready_ = false;
    if (disk_->Rename(SparePath().c_str(), path.c_str()) != 0) {
      LogWarning("capture spool: cannot use the preallocated segment",
                 {{"error", std::string(ErrnoStatus("cannot rename", SparePath()).message())}});
    }
  }
  auto files = std::make_shared<SegmentFiles>();
  files->id = id;
  files->write_fd = disk_->Open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (files->write_fd < 0) return ErrnoStatus("cannot create", path);
  // One file description per committer, opened before anything is written:
  // each sees every writeback error of the file from then on.
  for (int i = 0; i < committers(); ++i) {
    files->sync_fds.push_back(disk_->Open(path.c_str(), O_WRONLY | O_CLOEXEC, 0600));
    if (files->sync_fds.back() < 0) return ErrnoStatus("cannot open", path);
  }
  if (absl::Status synced = SyncDirectory(options_.dir); !synced.ok()) return synced;
  files_ = std::move(files);
  current_ = id;
  segments_[id].open_for_writing = true;
  return absl::OkStatus();
}

void Spool::MaybeDeleteSegment(SegmentId id) {
  auto it = segments_.find(id);
  if (it == segments_.end()) return;
  if (it->second.open_for_writing || it->second.outstanding > 0 || it->second.in_flight > 0) {
    return;
  }
  // The segment first: a crash in between leaves a log without a segment,
  // which Open removes, rather than a segment without its log.
  ::unlink(SegmentPath(id).c_str());
  if (it->second.release_log >= 0) ::close(it->second.release_log);
  ::unlink(ReleaseLogPath(id).c_str());
  total_bytes_ -= it->second.bytes;
  segments_.erase(it);
}

absl::Status Spool::Enqueue(Pending* pending) {
  const int64_t size = pending->bytes();
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("spool: shutting down");
  if (total_bytes_ + size > options_.max_bytes) {
    absl::Status full = absl::ResourceExhaustedError(
        absl::StrCat("the capture spool is full (", total_bytes_, " of ", options_.max_bytes,
                     " bytes): PostHog is not accepting events fast enough; retry later"));
    AttachErrorInfo(full, reasons::kCaptureSpoolFull);
    AttachRetryDelay(full, absl::Seconds(1));
    return full;
  }
  total_bytes_ += size;
  queued_bytes_ += size;
  queue_.push_back(pending);
  return absl::OkStatus();
}

absl::StatusOr<SpoolLocation> Spool::Append(std::shared_ptr<const RecordBlock> block) {
  Pending pending;
  pending.block = std::move(block);
  if (absl::Status queued = Enqueue(&pending); !queued.ok()) return queued;
  pending.synced.WaitForNotification();
  if (!pending.status.ok()) return pending.status;
  return pending.location;
}

absl::StatusOr<SpoolLocation> Spool::Append(const std::vector<SpoolRecord>& records) {
  return Append(Block(records));
}

void Spool::AppendAsync(std::shared_ptr<const RecordBlock> block, AppendDone done) {
  auto pending = std::make_unique<Pending>();
  pending->block = std::move(block);
  pending->done = std::move(done);
  if (absl::Status queued = Enqueue(pending.get()); !queued.ok()) {
    pending->done(queued);
    return;
  }
  pending.release();  // The spool owns it now.
}

void Spool::AppendAsync(const std::vector<SpoolRecord>& records, AppendDone done) {
  AppendAsync(Block(records), std::move(done));
}

absl::StatusOr<std::vector<SpoolRecord>> Spool::Read(const SpoolLocation& location) const {
  absl::StatusOr<std::shared_ptr<const RecordBlock>> block = ReadBlock(location);
  if (!block.ok()) return block.status();
  std::vector<SpoolRecord> records;
  records.reserve((*block)->size());
  for (size_t i = 0; i < (*block)->size(); ++i) {
    records.push_back({std::string((*block)->project(i)), (*block)->historical_migration(i),
                       std::string((*block)->json(i))});
  }
  return records;
}

absl::StatusOr<std::shared_ptr<const RecordBlock>> Spool::ReadBlock(
    const SpoolLocation& location) const {
  const std::string path = SegmentPath(location.segment);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path);
  std::string data(static_cast<size_t>(location.bytes), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t got = ::pread(fd, data.data() + done, data.size() - done,
                                static_cast<off_t>(location.offset + done));
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      ::close(fd);
      return ErrnoStatus("cannot read", path);
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  std::optional<RecordBlock> block = RecordBlock::Parse(std::move(data));
  if (!block.has_value() || static_cast<int64_t>(block->size()) != location.count) {
    return absl::DataLossError(absl::StrCat("spool: records changed on disk in ", path));
  }
  return std::make_shared<const RecordBlock>(*std::move(block));
}

void Spool::Release(const std::vector<RecordRef>& records) {
  // The entries of each segment's log, in order (a batch's records mostly
  // share one segment: one write each).
  std::map<SegmentId, std::string> entries;
  for (const RecordRef& record : records) PutU64(entries[record.segment], record.offset);
  absl::MutexLock lock(&mu_);
  for (const auto& [id, log] : entries) {
    auto it = segments_.find(id);
    if (it == segments_.end()) continue;
    Segment& segment = it->second;
    segment.outstanding -= static_cast<int64_t>(log.size() / 8);
    if (segment.outstanding > 0 || segment.open_for_writing) {
      // Not synced: a process crash keeps what write(2) took; an OS crash
      // may lose it, and those records are sent again (with their uuids).
      if (segment.release_log < 0) {
        segment.release_log =
            ::open(ReleaseLogPath(id).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      }
      if (segment.release_log < 0 || ::write(segment.release_log, log.data(), log.size()) !=
                                         static_cast<ssize_t>(log.size())) {
        LogWarning(
            "capture spool: cannot write the release log; a restart will send these "
            "events again",
            {{"path", ReleaseLogPath(id)}, {"error", std::strerror(errno)}});
      }
    }
    MaybeDeleteSegment(id);
  }
}

int64_t Spool::bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

int64_t Spool::Outstanding() const {
  absl::MutexLock lock(&mu_);
  int64_t outstanding = 0;
  for (const auto& [id, segment] : segments_) outstanding += segment.outstanding;
  return outstanding;
}

bool Spool::Writable() const {
  return !write_failed_.load(std::memory_order_relaxed) &&
         ::access(options_.dir.c_str(), W_OK) == 0;
}

void Spool::CommitterLoop(int index) {
  NameThread("spool-commit");
  // A committer takes the queue when no group is syncing, or when enough
  // waits to be worth a sync of its own (see the file comment). The
  // condition is evaluated by the thread that unlocks mu_, so a caller that
  // queues below the threshold wakes nobody: the committer whose sync
  // returns takes its append with the rest.
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopping_) return true;
    if (queue_.empty()) return false;
    return syncing_ + returning_ == 0 ||
           static_cast<int64_t>(queue_.size()) >= options_.overlap_min_appends ||
           queued_bytes_ >= options_.overlap_min_bytes;
  };
  // Whether this committer counts in `returning_`: its sync returned and it
  // is completing groups, after which it comes back for the queue.
  bool returning = false;
  while (true) {
    Group* group = nullptr;
    int fd = -1;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (returning) {
        --returning_;
        returning = false;
      }
      // A free committer takes what is queued: while another one syncs,
      // the callers arriving meanwhile join the next group.
      mu_.Await(absl::Condition(&has_work));
      if (queue_.empty()) return;  // Stopping, nothing left.
      group = new Group();
      group->sequence = next_sequence_++;
      group->pendings.swap(queue_);
      queued_bytes_ = 0;
      ++syncing_;
      in_flight_.push_back(group);
      if (files_ == nullptr || segments_[current_].written >= options_.segment_bytes) {
        status = RollSegment();
      }
      if (status.ok()) {
        // Offsets follow from the groups taken before, in order.
        Segment& segment = segments_[current_];
        group->files = files_;
        group->offset = segment.written;
        int64_t offset = segment.written;
        for (Pending* pending : group->pendings) {
          pending->location.segment = current_;
          pending->location.offset = offset;
          pending->location.bytes = pending->bytes();
          pending->location.count = static_cast<int64_t>(pending->block->size());
          offset += pending->location.bytes;
        }
        group->bytes = offset - group->offset;
        segment.written = offset;
        ++segment.in_flight;
        fd = files_->write_fd;
      }
      // Groups are written in order, so that a crash never leaves a later
      // group's records after a gap (an earlier write takes microseconds).
      const uint64_t sequence = group->sequence;
      auto my_turn = [this, sequence]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return next_write_ == sequence; };
      mu_.Await(absl::Condition(&my_turn));
    }
    // Written and synced outside the lock, so that callers keep queueing:
    // they form the next group, which another committer takes.
    if (status.ok()) {
      std::vector<iovec> records;
      records.reserve(group->pendings.size());
      for (Pending* pending : group->pendings) {
        const absl::string_view bytes = pending->block->bytes();
        records.push_back({const_cast<char*>(bytes.data()), bytes.size()});
      }
      if (!WriteAll(disk_, fd, group->offset, std::move(records))) {
        status = ErrnoStatus("cannot write", SegmentPath(group->files->id));
      }
    }
    {
      absl::MutexLock lock(&mu_);
      ++next_write_;
      if (!status.ok()) {
        FinishGroup(group, std::move(status));
        ++returning_;
        returning = true;
        CompleteFinishedGroups();
        continue;
      }
    }
    // The group and its files live until it completes, after this.
    if (disk_->DataSync(group->files->sync_fds[index]) != 0) {
      status = ErrnoStatus("cannot sync", SegmentPath(group->files->id));
    }
    absl::MutexLock lock(&mu_);
    FinishGroup(group, std::move(status));
    // Counted before the callbacks run without the lock: appends queued
    // meanwhile (below the overlap threshold) wait for this committer
    // instead of waking an idle one, which would cost a wake-up and a sleep
    // per group (two context switches) for no earlier sync: they are taken
    // as soon as the callbacks, a few microseconds each, are done.
    ++returning_;
    returning = true;
    CompleteFinishedGroups();
  }
}

void Spool::FinishGroup(Group* group, absl::Status status) {
  group->finished = true;
  --syncing_;
  if (status.ok()) return;
  LogError("capture spool: write failed", {{"error", std::string(status.message())}});
  if (group->files != nullptr) {
    if (group->sequence < group->files->failed_from) {
      group->files->failed_from = group->sequence;
      group->files->failure = status;
    }
    // The next group starts a fresh segment.
    if (files_ == group->files) files_.reset();
  }
  group->status = std::move(status);
}

void Spool::SettleGroup(Group* group) {
  absl::Status status = group->status;
  Segment* segment = nullptr;
  if (group->files != nullptr) {
    auto it = segments_.find(group->files->id);
    if (it != segments_.end()) segment = &it->second;
    // Written after records whose write or sync failed: not trusted either.
    if (status.ok() && group->sequence > group->files->failed_from) {
      status = absl::UnavailableError(absl::StrCat(
          "spool: an earlier write to the segment failed: ", group->files->failure.message()));
    }
  }
  for (Pending* pending : group->pendings) {
    pending->status = status;
    const int64_t size = pending->bytes();
    if (status.ok() && segment != nullptr) {
      segment->bytes += size;
      segment->outstanding += static_cast<int64_t>(pending->block->size());
    } else {
      // Not acknowledged: the caller gets an error. What reached the disk
      // anyway is delivered after a restart (at least once).
      total_bytes_ -= size;
    }
  }
  write_failed_.store(!status.ok(), std::memory_order_relaxed);
  if (segment != nullptr) {
    --segment->in_flight;
    MaybeDeleteSegment(group->files->id);
  }
}

void Spool::CompleteFinishedGroups() {
  // One thread at a time completes, in order: a committer finishing while
  // another one runs callbacks leaves its group to it.
  if (completing_) return;
  completing_ = true;
  while (!in_flight_.empty() && in_flight_.front()->finished) {
    std::vector<Group*> done;
    while (!in_flight_.empty() && in_flight_.front()->finished) {
      done.push_back(in_flight_.front());
      in_flight_.pop_front();
      SettleGroup(done.back());
    }
    mu_.Unlock();
    // After this a caller may return and free its Pending: not touched again.
    for (Group* group : done) {
      for (Pending* pending : group->pendings) {
        if (pending->done) {
          std::unique_ptr<Pending> owned(pending);
          if (owned->status.ok()) {
            owned->done(owned->location);
          } else {
            owned->done(owned->status);
          }
        } else {
          pending->synced.Notify();
        }
      }
      delete group;  // Closes its segment's files if it was the last.
    }
    mu_.Lock();
  }
  completing_ = false;
}

}  // namespace posthog_gateway
