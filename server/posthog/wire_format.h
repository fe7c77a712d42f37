#ifndef SERVER_POSTHOG_WIRE_FORMAT_H_
#define SERVER_POSTHOG_WIRE_FORMAT_H_

// The protobuf wire format (protobuf.dev/programming-guides/encoding), as far
// as the messages the gateway writes by hand need it: the payload Values of
// value_wire.h and the EvaluateFlags reply of server/service/flag_results.cc.
// Size functions give the bytes a field takes; PutX write through a pointer
// into room already made and return the end; Append grows a string by a
// bound and trims it to what was written.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

namespace posthog_gateway::wire {

enum Type { kVarint = 0, kFixed64 = 1, kLength = 2 };

// A map field is a repeated message of these two fields, whatever the map.
enum MapEntryField { kEntryKey = 1, kEntryValue = 2 };

constexpr size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

inline char* PutVarint(uint64_t value, char* p) {
  while (value >= 0x80) {
    *p++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *p++ = static_cast<char>(value);
  return p;
}

// Field numbers below 16 take a one-byte tag (the size functions below
// assume them).
inline char* PutTag(int field, Type type, char* p) {
  return PutVarint((static_cast<uint64_t>(field) << 3) | type, p);
}

inline char* PutBytes(int field, absl::string_view bytes, char* p) {
  p = PutTag(field, kLength, p);
  p = PutVarint(bytes.size(), p);
  std::memcpy(p, bytes.data(), bytes.size());
  return p + bytes.size();
}

// int32, int64, bool and enum fields: negative numbers take ten bytes.
inline char* PutVarintField(int field, int64_t value, char* p) {
  return PutVarint(static_cast<uint64_t>(value), PutTag(field, kVarint, p));
}

// A double, little-endian.
inline char* PutDoubleField(int field, double value, char* p) {
  p = PutTag(field, kFixed64, p);
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) *p++ = static_cast<char>(bits >> (8 * i));
  return p;
}

constexpr size_t BytesFieldSize(size_t bytes) { return 1 + VarintSize(bytes) + bytes; }
constexpr size_t VarintFieldSize(int64_t value) {
  return 1 + VarintSize(static_cast<uint64_t>(value));
}
constexpr size_t kDoubleFieldSize = 9;

// Appends through Put*: `bound` is at least what `put` writes.
template <typename Put>
void Append(std::string* out, size_t bound, Put put) {
  const size_t at = out->size();
  out->resize(at + bound);
  char* end = put(out->data() + at);
  out->resize(end - out->data());
}

inline void BytesField(int field, absl::string_view bytes, std::string* out) {
  Append(out, BytesFieldSize(bytes.size()), [&](char* p) { return PutBytes(field, bytes, p); });
}

inline void VarintField(int field, int64_t value, std::string* out) {
  Append(out, VarintFieldSize(value), [&](char* p) { return PutVarintField(field, value, p); });
}

}  // namespace posthog_gateway::wire

#endif  // SERVER_POSTHOG_WIRE_FORMAT_H_
