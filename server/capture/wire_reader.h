#ifndef SERVER_CAPTURE_WIRE_READER_H_
#define SERVER_CAPTURE_WIRE_READER_H_

// WireReader walks the fields of one protobuf message in its wire form
// (https://protobuf.dev/programming-guides/encoding/), without parsing it
// into a message: capture's stream path reads events this way and writes
// their JSON straight from the bytes (server/capture/event_json.h).
//
// It is deliberately narrow: it knows the wire types capture's messages use
// (VARINT, I64, LEN) and reports anything else (groups, I32, a truncated or
// oversized varint, a tag or length in more than 5 bytes, a length past the
// end, field number 0 or above 2^29-1)
// as a failure, so that callers fall back to protobuf's parser, which
// decides what such bytes mean. Views point into the message's bytes.
//
// Not thread-safe (a cursor); cheap to copy.

#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"

namespace posthog_gateway {

class WireReader {
 public:
  enum WireType : int { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2 };

  explicit WireReader(absl::string_view bytes)
      : next_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool done() const { return next_ == end_; }

  // Next reads a field's tag; false when it is malformed or of a wire type
  // other than the three above.
  bool Next(uint32_t* field, int* type) {
    uint64_t tag;
    if (!Varint(&tag, kMaxTagOrLengthBytes) || tag > 0xFFFFFFFFu) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *type = static_cast<int>(tag & 7);
    return *field != 0 && *field <= (1u << 29) - 1 && *type <= kLengthDelimited;
  }

  // Varint reads a VARINT (at most 10 bytes, as protobuf's parser), or at
  // most `max_bytes`.
  bool Varint(uint64_t* value, int max_bytes = 10) {
    uint64_t result = 0;
    for (int shift = 0; shift < 7 * max_bytes; shift += 7) {
      if (next_ == end_) return false;
      const uint8_t byte = static_cast<uint8_t>(*next_++);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // Fixed64 reads an I64 (little-endian, as x86 stores it).
  bool Fixed64(uint64_t* value) {
    if (end_ - next_ < 8) return false;
    std::memcpy(value, next_, 8);
    next_ += 8;
    return true;
  }

  // Bytes reads a LEN field's payload.
  bool Bytes(absl::string_view* value) {
    uint64_t length;
    if (!Varint(&length, kMaxTagOrLengthBytes) || length > static_cast<uint64_t>(end_ - next_)) {
      return false;
    }
    *value = absl::string_view(next_, static_cast<size_t>(length));
    next_ += length;
    return true;
  }

 private:
  // protobuf reads a tag or a LEN field's length in at most 5 bytes
  // (ReadTag, ReadSize in google/protobuf/parse_context.h) and refuses the
  // message when one takes more, though a VARINT value may take 10: such
  // bytes must not be taken here either.
  static constexpr int kMaxTagOrLengthBytes = 5;

  const char* next_;
  const char* end_;
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Fixed64 assumes little-endian");

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_WIRE_READER_H_
