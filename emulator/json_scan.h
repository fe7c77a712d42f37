#ifndef EMULATOR_JSON_SCAN_H_
#define EMULATOR_JSON_SCAN_H_

// The capture route's fast path (capture_handler.cc): a strict, validating,
// single-pass JSON scanner that builds no DOM. It records each event
// object's byte range and, for the event's own members and those of its
// "properties" object, where the few values capture needs are. It accepts a
// subset of what nlohmann accepts (it rejects a BOM, \u surrogate escapes,
// numbers that could overflow a double and nesting deeper than 256), so
// whatever it accepts the DOM parser accepts too; anything it rejects goes to
// the DOM path, which gives the authoritative answer (including every error).
//
// Everything it records points into the scanned body, which must outlive it.
// Tested by tests/emulator/json_scan_test.cc.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/string_view.h"

namespace posthog_emulator {

// What the scanner found in one JSON value.
enum class Kind : uint8_t { kNone, kString, kNumber, kObject, kArray, kBool, kNull };

struct Slot {
  Kind kind = Kind::kNone;
  bool escaped = false;         // a string with backslash escapes
  bool simple_int = false;      // an integer whose nlohmann dump() is its text
  const char* begin = nullptr;  // strings: after the opening quote
  const char* end = nullptr;    // strings: at the closing quote
  absl::string_view text() const {
    return absl::string_view(begin, static_cast<size_t>(end - begin));
  }
};

enum SlotId {
  kEventSlot,
  kDistinctIdSlot,
  kUuidSlot,
  kTimestampSlot,
  kPropertiesSlot,
  kApiKeySlot,
  kTokenSlot,
  kDollarTokenSlot,
  kBatchSlot,
  kNumSlots,
};

// Members records the interesting members of one object.
struct Members {
  Slot slot[kNumSlots];
  uint32_t seen = 0;
  bool duplicate = false;    // an interesting key appeared twice
  bool escaped_key = false;  // some key had escapes (could spell anything)
  bool person_key = false;   // $set, $set_once, $unset, $anon_distinct_id, ...
};

struct ScannedObject {
  const char* begin = nullptr;
  const char* end = nullptr;
  Members top;
  Members props;  // of "properties", when it is an object
};

// Is compares `key` with a literal; inlined (no memcmp call).
template <size_t N>
inline bool Is(absl::string_view key, const char (&literal)[N]) {
  return key.size() == N - 1 && std::memcmp(key.data(), literal, N - 1) == 0;
}

// Classify returns the SlotId of `key` (or kNumSlots) and sets
// `*person_key` for the keys that affect persons.
int Classify(absl::string_view key, bool* person_key);

// ScanCaptureBody scans a whole capture body. For a root object, `root` gets
// its members and `events` the objects of its "batch" array; for a root
// array (`*is_array`), `events` gets its elements, which must all be
// objects. False when the body is not JSON the scanner accepts (see above).
bool ScanCaptureBody(absl::string_view body, ScannedObject* root,
                     std::vector<ScannedObject>* events, bool* is_array);

}  // namespace posthog_emulator

#endif  // EMULATOR_JSON_SCAN_H_
