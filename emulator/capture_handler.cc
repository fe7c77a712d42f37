#include "emulator/capture_handler.h"

#include <cstring>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/str_format.h"
#include "emulator/event_store.h"
#include "emulator/http_util.h"
#include "emulator/person_store.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

constexpr size_t kMaxDistinctIdLength = 200;

std::string RandomUuid() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  const uint64_t a = rng();
  const uint64_t b = rng();
  return absl::StrFormat(
      "%08x-%04x-4%03x-%04x-%012x", static_cast<uint32_t>(a >> 32),
      static_cast<uint32_t>((a >> 16) & 0xffff), static_cast<uint32_t>(a & 0xfff),
      static_cast<uint32_t>(0x8000 | ((b >> 48) & 0x3fff)), b & 0xffffffffffffULL);
}

// Token returns the project token of an event or envelope, or "".
std::string Token(const json& obj) {
  for (const char* name : {"api_key", "token", "$token"}) {
    auto it = obj.find(name);
    if (it != obj.end() && it->is_string()) return it->get<std::string>();
  }
  auto props = obj.find("properties");
  if (props != obj.end() && props->is_object()) {
    auto it = props->find("token");
    if (it != props->end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

json CaptureError(int status, const char* code, const std::string& message) {
  return {{"status", status}, {"code", code}, {"error", message}};
}

// CharTracker is an input iterator over the body that remembers the
// position of the last character the JSON lexer read, so that the SAX
// handler below knows where each event object starts and ends.
struct CharTracker {
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* p = nullptr;
  const char** last = nullptr;

  reference operator*() const {
    *last = p;
    return *p;
  }
  CharTracker& operator++() {
    ++p;
    return *this;
  }
  CharTracker operator++(int) {
    CharTracker old = *this;
    ++p;
    return old;
  }
  bool operator==(const CharTracker& o) const { return p == o.p; }
  bool operator!=(const CharTracker& o) const { return p != o.p; }
};

// SliceSax builds the DOM (forwarding to nlohmann's own DOM builder) and
// records the byte range of every event object: the elements of a root
// array, or of the root object's "batch" array.
class SliceSax final : public nlohmann::json_sax<json> {
 public:
  SliceSax(json& root, const char* begin, const char** last,
           std::vector<std::pair<size_t, size_t>>* slices)
      : dom_(root, false), begin_(begin), last_(last), slices_(slices) {}

  bool null() override { return dom_.null(); }
  bool boolean(bool v) override { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) override { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) override { return dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) override {
    return dom_.number_float(v, s);
  }
  bool string(string_t& v) override { return dom_.string(v); }
  bool binary(binary_t& v) override { return dom_.binary(v); }
  bool start_object(std::size_t n) override {
    if (IsEventLevel()) start_ = static_cast<size_t>(*last_ - begin_);
    arrays_.push_back(false);
    return dom_.start_object(n);
  }
  bool key(string_t& k) override {
    if (arrays_.size() == 1) in_batch_ = k == "batch";
    return dom_.key(k);
  }
  bool end_object() override {
    arrays_.pop_back();
    if (IsEventLevel()) {
      slices_->emplace_back(start_, static_cast<size_t>(*last_ - begin_) + 1);
    }
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    arrays_.push_back(true);
    return dom_.start_array(n);
  }
  bool end_array() override {
    arrays_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t p, const std::string& t,
                   const nlohmann::detail::exception& e) override {
    return dom_.parse_error(p, t, e);
  }

 private:
  // True when the next object opened (or the one just closed) is an event.
  bool IsEventLevel() const {
    if (arrays_.size() == 1) return arrays_[0];
    return arrays_.size() == 2 && !arrays_[0] && arrays_[1] && in_batch_;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  const char* begin_;
  const char** last_;
  std::vector<std::pair<size_t, size_t>>* slices_;
  std::vector<bool> arrays_;
  bool in_batch_ = false;
  size_t start_ = 0;
};

// ParseWithEventSlices parses `body` into `root` and fills `slices` with the
// byte ranges of its events (none for a single-event body).
bool ParseWithEventSlices(absl::string_view body, json* root,
                          std::vector<std::pair<size_t, size_t>>* slices) {
  const char* last = body.data();
  SliceSax sax(*root, body.data(), &last, slices);
  CharTracker first{body.data(), &last};
  CharTracker end{body.data() + body.size(), &last};
  return json::sax_parse(first, end, &sax) && !root->is_discarded();
}

// EventFromJson fills `s` from the parsed event `e` whose raw text is
// `text`: event name, distinct_id (top level, else properties.distinct_id;
// numbers are stringified; at most 200 characters), uuid (generated when
// absent) and, when the event has no timestamp, `*now` (set on first use).
absl::Status EventFromJson(const json& e, absl::string_view text, int64_t team_id, std::string* now,
                           StoredEvent* s) {
  auto name = e.find("event");
  if (name == e.end() || !name->is_string() || name->get<std::string>().empty()) {
    return absl::InvalidArgumentError("missing_event_name");
  }
  const json* distinct = nullptr;
  auto d = e.find("distinct_id");
  if (d != e.end() && !d->is_null()) distinct = &*d;
  auto props = e.find("properties");
  if (distinct == nullptr && props != e.end() && props->is_object()) {
    auto pd = props->find("distinct_id");
    if (pd != props->end() && !pd->is_null()) distinct = &*pd;
  }
  if (distinct != nullptr) {
    s->distinct_id = distinct->is_string() ? distinct->get<std::string>() : distinct->dump();
  }
  if (s->distinct_id.empty()) {
    return absl::InvalidArgumentError("missing_distinct_id");
  }
  if (s->distinct_id.size() > kMaxDistinctIdLength) {
    s->distinct_id.resize(kMaxDistinctIdLength);
  }
  auto u = e.find("uuid");
  if (u != e.end() && u->is_string() && !u->get<std::string>().empty()) {
    s->uuid = u->get<std::string>();
  } else {
    s->uuid = RandomUuid();
  }
  if (!e.contains("timestamp")) {
    if (now->empty()) *now = NowIso();
    s->generated_timestamp = *now;
  }
  s->team_id = team_id;
  s->event = name->get<std::string>();
  // The raw text of the event as received; the normalized fields above
  // are applied when it is read back (EventStore::Query).
  s->json.assign(text.data(), text.size());
  return absl::OkStatus();
}

// --- Fast path ---------------------------------------------------------------
//
// Scanner is a strict, validating, single-pass JSON scanner that builds no
// DOM. It records each event object's byte range and, for the event's own
// members and those of its "properties" object, where the few values
// capture needs are. It accepts a subset of what nlohmann accepts (it
// rejects a BOM, \u surrogate escapes, numbers that could overflow a
// double and nesting deeper than kMaxDepth), so whatever it accepts the
// DOM parser accepts too; anything it rejects goes to the DOM path, which
// gives the authoritative answer (including every error).

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

// Classify returns the SlotId of `key` (or kNumSlots) and sets
// `*person_key` for the keys that affect persons.
// Is compares `key` with a literal; inlined (no memcmp call).
template <size_t N>
inline bool Is(absl::string_view key, const char (&literal)[N]) {
  return key.size() == N - 1 && std::memcmp(key.data(), literal, N - 1) == 0;
}

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

bool IsPersonEventName(absl::string_view name) {
  return name.size() > 1 && name[0] == '$' &&
         (Is(name, "$identify") || Is(name, "$create_alias") || Is(name, "$groupidentify") ||
          Is(name, "$delete_person_property"));
}

// NeedsDom tells whether an event must be parsed to a DOM: it affects
// persons or groups, or a field capture reads is not a plain string
// (escapes, non-string distinct_id other than a plain integer, ...), or it
// is invalid (the DOM path then reports the error).
bool NeedsDom(const ScannedObject& o) {
  const Members& t = o.top;
  const Members& p = o.props;
  const bool props_object = t.slot[kPropertiesSlot].kind == Kind::kObject;
  if (t.duplicate || t.escaped_key || t.person_key) return true;
  if (props_object && (p.duplicate || p.escaped_key || p.person_key)) {
    return true;
  }
  const Slot& name = t.slot[kEventSlot];
  if (name.kind != Kind::kString || name.escaped || name.begin == name.end ||
      IsPersonEventName(name.text())) {
    return true;
  }
  const Slot* d = &t.slot[kDistinctIdSlot];
  if (d->kind == Kind::kNone || d->kind == Kind::kNull) {
    if (!props_object) return true;
    d = &p.slot[kDistinctIdSlot];
  }
  if (d->kind == Kind::kString) {
    if (d->escaped || d->begin == d->end) return true;
  } else if (d->kind != Kind::kNumber || !d->simple_int) {
    return true;
  }
  const Slot& uuid = t.slot[kUuidSlot];
  if (uuid.kind == Kind::kString && uuid.escaped) return true;
  const Slot& ts = t.slot[kTimestampSlot];
  if (ts.kind != Kind::kNone && ts.kind != Kind::kNull &&
      !(ts.kind == Kind::kString && !ts.escaped)) {
    return true;
  }
  for (int id : {kApiKeySlot, kTokenSlot, kDollarTokenSlot}) {
    if (t.slot[id].kind == Kind::kString && t.slot[id].escaped) return true;
  }
  if (props_object && p.slot[kTokenSlot].kind == Kind::kString && p.slot[kTokenSlot].escaped) {
    return true;
  }
  return false;
}

// FastToken is Token() over scanned members; false when the token string
// has escapes.
bool FastToken(const Members& t, const Members& p, absl::string_view* token) {
  *token = absl::string_view();
  for (int id : {kApiKeySlot, kTokenSlot, kDollarTokenSlot}) {
    const Slot& s = t.slot[id];
    if (s.kind == Kind::kString) {
      *token = s.text();
      return !s.escaped;
    }
  }
  if (t.slot[kPropertiesSlot].kind == Kind::kObject && p.slot[kTokenSlot].kind == Kind::kString) {
    *token = p.slot[kTokenSlot].text();
    return !p.slot[kTokenSlot].escaped;
  }
  return true;
}

// IngestFast ingests `body` without building a DOM for plain events.
// Returns false, having changed nothing, when the body is not a valid
// batch of acceptable events (or is unusual); the caller then takes the
// DOM path.
bool IngestFast(EmulatorState& state, absl::string_view body, CaptureResult* result) {
  Scanner scanner(body);
  ScannedObject root;
  std::vector<ScannedObject> events;
  events.reserve(body.size() / 128 + 1);
  bool is_array = false;
  if (!scanner.Root(&root, &events, &is_array)) return false;
  absl::string_view token;
  if (!is_array) {
    if (root.top.duplicate || root.top.escaped_key) return false;
    const Kind batch = root.top.slot[kBatchSlot].kind;
    if (batch != Kind::kNone) {
      if (batch != Kind::kArray) return false;
      if (!FastToken(root.top, root.props, &token)) return false;
    } else {
      root.begin = body.data();
      root.end = body.data() + body.size();
      events.assign(1, root);
    }
  }
  if (events.empty()) return false;

  std::vector<json> doms(events.size());
  std::vector<char> dom(events.size(), 0);
  for (size_t i = 0; i < events.size(); ++i) {
    if (!NeedsDom(events[i])) continue;
    dom[i] = 1;
    doms[i] = json::parse(events[i].begin, events[i].end, nullptr, false);
    if (!doms[i].is_object()) return false;
  }
  std::string dom_token;
  for (size_t i = 0; token.empty() && i < events.size(); ++i) {
    if (dom[i]) {
      dom_token = Token(doms[i]);
      token = dom_token;
    } else if (!FastToken(events[i].top, events[i].props, &token)) {
      return false;
    }
  }
  if (token.empty()) return false;
  std::shared_ptr<const Directory> directory = state.directory();
  const Project* project = directory->ProjectByToken(token);
  if (project == nullptr) return false;

  std::vector<StoredEvent> stored(events.size());
  std::vector<absl::string_view> timestamps(events.size());
  std::string now;
  for (size_t i = 0; i < events.size(); ++i) {
    const ScannedObject& o = events[i];
    const absl::string_view text(o.begin, static_cast<size_t>(o.end - o.begin));
    StoredEvent& s = stored[i];
    if (dom[i]) {
      if (!EventFromJson(doms[i], text, project->id, &now, &s).ok()) {
        return false;
      }
      continue;
    }
    const Members& t = o.top;
    const Slot* d = &t.slot[kDistinctIdSlot];
    if (d->kind == Kind::kNone || d->kind == Kind::kNull) {
      d = &o.props.slot[kDistinctIdSlot];
    }
    absl::string_view distinct = d->text();
    if (distinct.size() > kMaxDistinctIdLength) {
      distinct = distinct.substr(0, kMaxDistinctIdLength);
    }
    s.distinct_id.assign(distinct.data(), distinct.size());
    const Slot& uuid = t.slot[kUuidSlot];
    if (uuid.kind == Kind::kString && uuid.begin != uuid.end) {
      s.uuid.assign(uuid.begin, static_cast<size_t>(uuid.end - uuid.begin));
    } else {
      s.uuid = RandomUuid();
    }
    const Slot& ts = t.slot[kTimestampSlot];
    if (ts.kind == Kind::kNone) {
      if (now.empty()) now = NowIso();
      s.generated_timestamp = now;
    } else if (ts.kind == Kind::kString) {
      timestamps[i] = ts.text();
    }
    s.team_id = project->id;
    const Slot& name = t.slot[kEventSlot];
    s.event.assign(name.begin, static_cast<size_t>(name.end - name.begin));
    s.json.assign(text.data(), text.size());
  }
  std::vector<PersonEvent> person_events;
  person_events.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    person_events.push_back({dom[i] ? &doms[i] : nullptr, stored[i].distinct_id, timestamps[i]});
  }
  state.persons().ProcessEvents(project->id, person_events);
  result->accepted = stored.size();
  result->duplicates = state.events().Add(std::move(stored));
  return true;
}

}  // namespace

absl::StatusOr<CaptureResult> IngestCapture(EmulatorState& state, absl::string_view body) {
  CaptureResult fast;
  if (IngestFast(state, body, &fast)) return fast;
  // The DOM path: unusual or invalid bodies.
  json parsed;
  std::vector<std::pair<size_t, size_t>> slices;
  if (!ParseWithEventSlices(body, &parsed, &slices) || !(parsed.is_object() || parsed.is_array())) {
    return absl::InvalidArgumentError("request_parsing_error");
  }
  std::string token;
  json* events = nullptr;
  json single = json::array();
  if (parsed.is_array()) {
    events = &parsed;
  } else if (parsed.contains("batch")) {
    if (!parsed["batch"].is_array()) {
      return absl::InvalidArgumentError("request_parsing_error");
    }
    token = Token(parsed);
    events = &parsed["batch"];
  } else {
    single.push_back(std::move(parsed));
    events = &single;
    slices.assign(1, {0, body.size()});
  }
  if (events->empty()) return absl::InvalidArgumentError("empty_batch");
  if (token.empty()) {
    for (const json& e : *events) {
      if (e.is_object()) token = Token(e);
      if (!token.empty()) break;
    }
  }
  if (token.empty()) return absl::UnauthenticatedError("ingest_key_required");
  std::shared_ptr<const Directory> directory = state.directory();
  const Project* project = directory->ProjectByToken(token);
  if (project == nullptr) return absl::UnauthenticatedError("ingest_key_unknown");

  std::vector<StoredEvent> stored;
  stored.reserve(events->size());
  std::vector<PersonEvent> person_events;
  person_events.reserve(events->size());
  std::string now;
  for (size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    if (!e.is_object() || slices.size() != events->size()) {
      return absl::InvalidArgumentError("request_parsing_error");
    }
    StoredEvent s;
    absl::Status status = EventFromJson(
        e, absl::string_view(body.data() + slices[i].first, slices[i].second - slices[i].first),
        project->id, &now, &s);
    if (!status.ok()) return status;
    stored.push_back(std::move(s));
  }
  for (size_t i = 0; i < events->size(); ++i) {
    person_events.push_back({&(*events)[i], stored[i].distinct_id});
  }
  state.persons().ProcessEvents(project->id, person_events);
  CaptureResult result;
  result.accepted = stored.size();
  result.duplicates = state.events().Add(std::move(stored));
  return result;
}

void HandleCapture(EmulatorState& state, size_t limit, const httplib::Request& req,
                   httplib::Response& res, RequestContext& ctx) {
  ctx.auth = AuthMethod::kToken;
  if (req.method == "OPTIONS") {
    res.status = 204;
    return;
  }
  absl::StatusOr<std::string> body = DecodeRequestBody(req, limit);
  if (!body.ok()) {
    if (absl::IsResourceExhausted(body.status())) {
      SetJson(res, 413, CaptureError(413, "payload_too_large", "maximum event size exceeded"));
    } else {
      SetJson(res, 400, CaptureError(400, "request_decoding_error", "failed to decode request"));
    }
    return;
  }
  if (req.method == "GET" && body->empty()) {
    std::string data = QueryParam(req, "data");
    if (!data.empty()) *body = data;
  }
  absl::StatusOr<CaptureResult> result = IngestCapture(state, *body);
  if (!result.ok()) {
    const std::string code(result.status().message());
    if (absl::IsUnauthenticated(result.status())) {
      SetJson(res, 401,
              CaptureError(401, code.c_str(),
                           code == "ingest_key_required" ? "API key is missing from the request"
                                                         : "API key is not valid for any project"));
    } else {
      SetJson(res, 400, CaptureError(400, code.c_str(), "failed to parse request: " + code));
    }
    return;
  }
  SetJson(res, 200, {{"status", "Ok"}});
}

}  // namespace posthog_emulator
