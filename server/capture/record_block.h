#ifndef SERVER_CAPTURE_RECORD_BLOCK_H_
#define SERVER_CAPTURE_RECORD_BLOCK_H_

// RecordBlock holds consecutive spool records, in the spool's on-disk format
// (spool.h), in one buffer: the events of one append (a stream message, a
// unary call) or of one read back from a segment.
//
// It is how an event's JSON is held from its build to its delivery: encoded
// once (with its checksum), written to the segment as it is, and read by
// delivery straight from the same buffer, which the delivery queue's entries
// share (std::shared_ptr<const RecordBlock>). A message of hundreds of events
// is then one allocation, written once and freed once after delivery,
// instead of one heap string per event copied into the spool's buffer, moved
// through the queue and freed one by one; a backlog read back from disk is
// one buffer of the bytes read, with no copy per record.
//
// Record format (little-endian):
//
//   u32 length | u32 crc32(payload) | payload
//   payload = u8 flags (bit 0: historical_migration) | u16 project length |
//             project alias | event JSON
//
// Not thread-safe while being written; once shared (const) it is read-only
// and any thread may read it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace posthog_gateway {

class RecordBlock final {
 public:
  // The header (length, checksum) and the fixed part of the payload (flags,
  // project length) of every record.
  static constexpr size_t kHeaderBytes = 8;
  static constexpr size_t kFixedPayloadBytes = 3;
  // A record longer than this is damage, not data: no event is that large.
  static constexpr uint32_t kMaxRecordBytes = 64 << 20;
  // The longest project alias a record can name (u16).
  static constexpr size_t kMaxProjectBytes = 0xFFFF;

  RecordBlock() = default;
  RecordBlock(RecordBlock&&) = default;
  RecordBlock& operator=(RecordBlock&&) = default;
  RecordBlock(const RecordBlock&) = delete;
  RecordBlock& operator=(const RecordBlock&) = delete;

  // RecordBytes is the size on disk of a record of `project` and `json`.
  static size_t RecordBytes(absl::string_view project, absl::string_view json) {
    return kHeaderBytes + kFixedPayloadBytes + project.size() + json.size();
  }

  // Reserve makes room for `records` records of `bytes` in all.
  void Reserve(size_t bytes, size_t records);

  // ShrinkToFit gives back what the buffer holds beyond its records (a
  // Reserve on an estimate, or growth): a copy, so only for a block whose
  // unused room is worth more than it.
  void ShrinkToFit();

  // Add appends one record of `json` for `project` (at most
  // kMaxProjectBytes; longer is a programming error and is cut).
  void Add(absl::string_view project, bool historical_migration, absl::string_view json);

  // Parse takes `bytes`, consecutive records as written (one append, one
  // replayed run, read back from a segment), and keeps them as they are:
  // nullopt when any record is damaged (length, flags or checksum) or the
  // bytes do not end where a record does.
  static std::optional<RecordBlock> Parse(std::string bytes);

  // RecordSizeAt is the size of the intact record starting at `pos` of
  // `data`: its header plausible, within `data` and its checksum matching;
  // 0 when there is none.
  static size_t RecordSizeAt(absl::string_view data, size_t pos);
  // ProjectAt is the project of the intact record starting at `pos` of
  // `data` (one RecordSizeAt accepted): a view into `data`.
  static absl::string_view ProjectAt(absl::string_view data, size_t pos);

  // The records: their count, all their bytes (what the spool writes) and,
  // for the i-th, where it starts in bytes() and its fields.
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  absl::string_view bytes() const { return bytes_; }
  size_t offset(size_t i) const { return entries_[i].offset; }
  absl::string_view json(size_t i) const {
    const Entry& entry = entries_[i];
    return absl::string_view(
        bytes_.data() + entry.offset + kHeaderBytes + kFixedPayloadBytes + entry.project_size,
        entry.json_size);
  }
  absl::string_view project(size_t i) const {
    const Entry& entry = entries_[i];
    return absl::string_view(bytes_.data() + entry.offset + kHeaderBytes + kFixedPayloadBytes,
                             entry.project_size);
  }
  bool historical_migration(size_t i) const { return entries_[i].historical_migration; }
  // The JSON bytes of all records (what a delivery queue counts).
  int64_t json_bytes() const { return json_bytes_; }
  // The memory the block holds: its buffer's capacity (which may exceed
  // bytes() when it was reserved on an estimate) and its index.
  size_t allocated_bytes() const { return bytes_.capacity() + entries_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    size_t offset = 0;
    uint32_t json_size = 0;
    uint16_t project_size = 0;
    bool historical_migration = false;
  };

  std::string bytes_;
  std::vector<Entry> entries_;
  int64_t json_bytes_ = 0;
};

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_RECORD_BLOCK_H_
