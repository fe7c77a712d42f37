#include "server/capture/record_block.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "libdeflate.h"

namespace posthog_gateway {
namespace {

void PutU32(char* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

uint32_t GetU32(const char* data) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(data[i]);
  return value;
}

// The project's size, from a record's payload (after its header).
size_t ProjectSize(const char* payload) {
  return static_cast<unsigned char>(payload[1]) |
         (static_cast<size_t>(static_cast<unsigned char>(payload[2])) << 8);
}

// CRC-32 (the zlib/gzip one: segments written with zlib's crc32 read back).
uint32_t Crc32(const char* data, size_t size) { return libdeflate_crc32(0, data, size); }

}  // namespace

void RecordBlock::Reserve(size_t bytes, size_t records) {
  bytes_.reserve(bytes);
  entries_.reserve(records);
}

void RecordBlock::ShrinkToFit() {
  bytes_.shrink_to_fit();
  entries_.shrink_to_fit();
}

void RecordBlock::Add(absl::string_view project, bool historical_migration,
                      absl::string_view json) {
  project = project.substr(0, kMaxProjectBytes);
  const size_t start = bytes_.size();
  const size_t payload_size = kFixedPayloadBytes + project.size() + json.size();
  // The payload written in place and checksummed there: no intermediate
  // copy (every event goes through here).
  bytes_.resize(start + kHeaderBytes + payload_size);
  char* record = bytes_.data() + start;
  char* payload = record + kHeaderBytes;
  payload[0] = historical_migration ? 1 : 0;
  payload[1] = static_cast<char>(project.size() & 0xFF);
  payload[2] = static_cast<char>((project.size() >> 8) & 0xFF);
  if (!project.empty()) std::memcpy(payload + kFixedPayloadBytes, project.data(), project.size());
  if (!json.empty()) {
    std::memcpy(payload + kFixedPayloadBytes + project.size(), json.data(), json.size());
  }
  PutU32(record, static_cast<uint32_t>(payload_size));
  PutU32(record + 4, Crc32(payload, payload_size));
  entries_.push_back({start, static_cast<uint32_t>(json.size()),
                      static_cast<uint16_t>(project.size()), historical_migration});
  json_bytes_ += static_cast<int64_t>(json.size());
}

size_t RecordBlock::RecordSizeAt(absl::string_view data, size_t pos) {
  if (pos > data.size() || data.size() - pos < kHeaderBytes) return 0;
  const uint32_t length = GetU32(data.data() + pos);
  if (length < kFixedPayloadBytes || length > kMaxRecordBytes ||
      data.size() - pos - kHeaderBytes < length) {
    return 0;
  }
  const char* payload = data.data() + pos + kHeaderBytes;
  const uint8_t flags = static_cast<uint8_t>(payload[0]);
  const size_t project_size = ProjectSize(payload);
  // Cheap checks first: resynchronizing after damage tries every offset.
  if (flags > 1 || kFixedPayloadBytes + project_size > length) return 0;
  if (Crc32(payload, length) != GetU32(data.data() + pos + 4)) return 0;
  return kHeaderBytes + length;
}

absl::string_view RecordBlock::ProjectAt(absl::string_view data, size_t pos) {
  return data.substr(pos + kHeaderBytes + kFixedPayloadBytes,
                     ProjectSize(data.data() + pos + kHeaderBytes));
}

std::optional<RecordBlock> RecordBlock::Parse(std::string bytes) {
  RecordBlock block;
  block.bytes_ = std::move(bytes);
  const absl::string_view data = block.bytes_;
  for (size_t pos = 0; pos < data.size();) {
    const size_t size = RecordSizeAt(data, pos);
    if (size == 0) return std::nullopt;
    const char* payload = data.data() + pos + kHeaderBytes;
    const size_t project_size = ProjectSize(payload);
    const size_t json_size = size - kHeaderBytes - kFixedPayloadBytes - project_size;
    block.entries_.push_back({pos, static_cast<uint32_t>(json_size),
                              static_cast<uint16_t>(project_size), (payload[0] & 1) != 0});
    block.json_bytes_ += static_cast<int64_t>(json_size);
    pos += size;
  }
  return block;
}

}  // namespace posthog_gateway
