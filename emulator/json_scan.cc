#include "emulator/json_scan.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace posthog_emulator {

int Classify(absl::string_view key, bool* person_key) {
  switch (key.size()) {
    case 4:
      if (Is(key, "uuid")) return kUuidSlot;
      if (Is(key, "$set")) *person_key = true;
      break;
    case 5:
      if (Is(key, "event")) return kEventSlot;
      if (Is(key, "token")) return kTokenSlot;
      if (Is(key, "batch")) return kBatchSlot;
      break;
    case 6:
      if (Is(key, "$token")) return kDollarTokenSlot;
      if (Is(key, "$unset")) *person_key = true;
      break;
    case 7:
      if (Is(key, "api_key")) return kApiKeySlot;
      break;
    case 9:
      if (Is(key, "timestamp")) return kTimestampSlot;
      if (Is(key, "$set_once")) *person_key = true;
      break;
    case 10:
      if (Is(key, "properties")) return kPropertiesSlot;
      break;
    case 11:
      if (Is(key, "distinct_id")) return kDistinctIdSlot;
      break;
    case 17:
      if (Is(key, "$anon_distinct_id")) *person_key = true;
      break;
    case 23:
      if (Is(key, "$process_person_profile")) *person_key = true;
      break;
    default:
      break;
  }
  return kNumSlots;
}

namespace {

class Scanner {
 public:
  explicit Scanner(absl::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  // Root scans the whole body. For a root object, `root` gets its members
  // and `events` the objects of its "batch" array; for a root array,
  // `events` gets its elements (which must all be objects).
  bool Root(ScannedObject* root, std::vector<ScannedObject>* events, bool* is_array) {
    SkipWs();
    if (p_ == end_) return false;
    if (*p_ == '{') {
      *is_array = false;
      root->begin = p_;
      if (!Object(1, &root->top, &root->props, events)) return false;
      root->end = p_;
    } else if (*p_ == '[') {
      *is_array = true;
      if (!Array(1, events)) return false;
    } else {
      return false;
    }
    SkipWs();
    return p_ == end_;
  }

 private:
  static constexpr int kMaxDepth = 256;

  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static bool Cont(unsigned char c, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return c >= lo && c <= hi;
  }

  // String scans a string at '"' into `s` (begin/end exclude the quotes).
  bool String(Slot* s) {
    ++p_;
    s->kind = Kind::kString;
    s->escaped = false;
    s->begin = p_;
    for (;;) {
#if defined(__SSE2__)
      const __m128i quote = _mm_set1_epi8('"');
      const __m128i backslash = _mm_set1_epi8('\\');
      const __m128i space = _mm_set1_epi8(0x20);
      while (end_ - p_ >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
        // Signed compare: bytes >= 0x80 are negative, so "< 0x20" catches
        // both control characters and non-ASCII bytes.
        const __m128i special =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                         _mm_cmplt_epi8(v, space));
        const int mask = _mm_movemask_epi8(special);
        if (mask == 0) {
          p_ += 16;
          continue;
        }
        p_ += __builtin_ctz(static_cast<unsigned>(mask));
        break;
      }
#endif
      if (p_ >= end_) return false;
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        s->end = p_;
        ++p_;
        return true;
      }
      if (c == '\\') {
        s->escaped = true;
        if (end_ - p_ < 2) return false;
        switch (p_[1]) {
          case '"':
          case '\\':
          case '/':
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
            p_ += 2;
            break;
          case 'u': {
            if (end_ - p_ < 6) return false;
            int code = 0;
            for (int i = 2; i < 6; ++i) {
              const int h = Hex(p_[i]);
              if (h < 0) return false;
              code = code * 16 + h;
            }
            // Surrogates (pairs or lone) are left to nlohmann.
            if (code >= 0xD800 && code <= 0xDFFF) return false;
            p_ += 6;
            break;
          }
          default:
            return false;
        }
        continue;
      }
      if (c < 0x20) return false;
      if (c < 0x80) {
        ++p_;
        continue;
      }
      // UTF-8, validated as nlohmann does (RFC 3629).
      const ptrdiff_t left = end_ - p_;
      const unsigned char* u = reinterpret_cast<const unsigned char*>(p_);
      if (c >= 0xC2 && c <= 0xDF) {
        if (left < 2 || !Cont(u[1])) return false;
        p_ += 2;
      } else if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3) return false;
        const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
        if (!Cont(u[1], lo, hi) || !Cont(u[2])) return false;
        p_ += 3;
      } else if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4) return false;
        const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
        if (!Cont(u[1], lo, hi) || !Cont(u[2]) || !Cont(u[3])) return false;
        p_ += 4;
      } else {
        return false;
      }
    }
  }

  bool Number(Slot* s) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    } else {
      return false;
    }
    const size_t int_digits = static_cast<size_t>(p_ - start) - (negative ? 1 : 0);
    bool integer = true;
    int exponent = 0;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) {
        if (exponent < 100000) exponent = exponent * 10 + (*p_ - '0');
        ++p_;
      }
    }
    // Anything that might overflow a double (which nlohmann rejects) is
    // left to nlohmann.
    if (p_ - start > 100 || exponent > 200) return false;
    s->kind = Kind::kNumber;
    s->begin = start;
    s->end = p_;
    s->simple_int =
        integer && int_digits <= 18 && !(negative && int_digits == 1 && start[1] == '0');
    return true;
  }

  bool Literal(const char* word, size_t n, Kind kind, Slot* s) {
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) {
      return false;
    }
    s->kind = kind;
    s->begin = p_;
    p_ += n;
    s->end = p_;
    return true;
  }

  // Value scans any value at p_ (whitespace already skipped).
  bool Value(int depth, Slot* s) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        s->kind = Kind::kObject;
        s->begin = p_;
        if (!Object(depth + 1, nullptr, nullptr, nullptr)) return false;
        s->end = p_;
        return true;
      case '[':
        s->kind = Kind::kArray;
        s->begin = p_;
        if (!Array(depth + 1, nullptr)) return false;
        s->end = p_;
        return true;
      case '"':
        return String(s);
      case 't':
        return Literal("true", 4, Kind::kBool, s);
      case 'f':
        return Literal("false", 5, Kind::kBool, s);
      case 'n':
        return Literal("null", 4, Kind::kNull, s);
      default:
        return Number(s);
    }
  }

  // Object scans an object at '{'. With `m`, records its members; with
  // `props`, the members of its "properties" object; with `batch`, the
  // objects of its "batch" array.
  bool Object(int depth, Members* m, Members* props, std::vector<ScannedObject>* batch) {
    if (depth > kMaxDepth) return false;
    ++p_;
    SkipWs();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      if (p_ == end_ || *p_ != '"') return false;
      Slot key;
      if (!String(&key)) return false;
      SkipWs();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      SkipWs();
      if (p_ == end_) return false;
      int id = kNumSlots;
      if (m != nullptr) {
        if (key.escaped) {
          m->escaped_key = true;
        } else {
          id = Classify(key.text(), &m->person_key);
        }
        if (id != kNumSlots) {
          if (m->seen & (1u << id)) m->duplicate = true;
          m->seen |= 1u << id;
        }
      }
      if (id == kPropertiesSlot && props != nullptr && *p_ == '{') {
        Slot& s = m->slot[id];
        *props = Members();
        s.kind = Kind::kObject;
        s.begin = p_;
        if (!Object(depth + 1, props, nullptr, nullptr)) return false;
        s.end = p_;
      } else if (id == kBatchSlot && batch != nullptr && *p_ == '[') {
        Slot& s = m->slot[id];
        s.kind = Kind::kArray;
        s.begin = p_;
        if (!Array(depth + 1, batch)) return false;
        s.end = p_;
      } else {
        Slot scratch;
        if (!Value(depth, id != kNumSlots ? &m->slot[id] : &scratch)) {
          return false;
        }
      }
      SkipWs();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        SkipWs();
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      return false;
    }
  }

  // Array scans an array at '['. With `events`, every element must be an
  // object and is recorded.
  bool Array(int depth, std::vector<ScannedObject>* events) {
    if (depth > kMaxDepth) return false;
    ++p_;
    SkipWs();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (p_ == end_) return false;
      if (events != nullptr) {
        if (*p_ != '{') return false;
        events->emplace_back();
        ScannedObject& o = events->back();
        o.begin = p_;
        if (!Object(depth + 1, &o.top, &o.props, nullptr)) return false;
        o.end = p_;
      } else {
        Slot scratch;
        if (!Value(depth, &scratch)) return false;
      }
      SkipWs();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        SkipWs();
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      return false;
    }
  }

  const char* p_;
  const char* end_;
};

}  // namespace

bool ScanCaptureBody(absl::string_view body, ScannedObject* root,
                     std::vector<ScannedObject>* events, bool* is_array) {
  return Scanner(body).Root(root, events, is_array);
}

}  // namespace posthog_emulator
