#include "emulator/capture_handler.h"

#include <cstring>
#include <deque>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "emulator/event_store.h"
#include "emulator/http_util.h"
#include "emulator/json_scan.h"
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

// ParsedEvent is an event read through the DOM path: its fields may be
// computed (a stringified distinct_id, a generated uuid), so it owns them.
// The fast path stores views into the body instead.
struct ParsedEvent {
  std::string uuid;
  int64_t team_id = 0;
  std::string distinct_id;
  std::string event;
  absl::string_view json;  // into the body
  std::string generated_timestamp;

  EventToStore View() const {
    return EventToStore{uuid, team_id, distinct_id, event, json, generated_timestamp};
  }
};

// EventFromJson fills `s` from the parsed event `e` whose raw text is
// `text`: event name, distinct_id (top level, else properties.distinct_id;
// numbers are stringified; at most 200 characters), uuid (generated when
// absent) and, when the event has no timestamp, `*now` (set on first use).
absl::Status EventFromJson(const json& e, absl::string_view text, int64_t team_id, std::string* now,
                           ParsedEvent* s) {
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
  s->json = text;
  return absl::OkStatus();
}

// --- Fast path: the body as ScanCaptureBody (emulator/json_scan.h) saw it ---

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
bool IngestFast(EmulatorState& state, absl::string_view body, absl::string_view gzip,
                CaptureResult* result) {
  ScannedObject root;
  std::vector<ScannedObject> events;
  events.reserve(body.size() / 128 + 1);
  bool is_array = false;
  if (!ScanCaptureBody(body, &root, &events, &is_array)) return false;
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

  // Plain events are stored from views into the body; what they do not
  // find there (a generated uuid, the time) and DOM-read events live in
  // these until Add has copied them.
  std::vector<EventToStore> stored(events.size());
  std::vector<absl::string_view> timestamps(events.size());
  std::deque<ParsedEvent> parsed;
  std::deque<std::string> generated_uuids;
  // Set once, on first use, and never changed after: views of it stay valid.
  std::string now;
  for (size_t i = 0; i < events.size(); ++i) {
    const ScannedObject& o = events[i];
    const absl::string_view text(o.begin, static_cast<size_t>(o.end - o.begin));
    EventToStore& s = stored[i];
    if (dom[i]) {
      ParsedEvent& p = parsed.emplace_back();
      if (!EventFromJson(doms[i], text, project->id, &now, &p).ok()) {
        return false;
      }
      s = p.View();
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
    s.distinct_id = distinct;
    const Slot& uuid = t.slot[kUuidSlot];
    if (uuid.kind == Kind::kString && uuid.begin != uuid.end) {
      s.uuid = uuid.text();
    } else {
      s.uuid = generated_uuids.emplace_back(RandomUuid());
    }
    const Slot& ts = t.slot[kTimestampSlot];
    if (ts.kind == Kind::kNone) {
      if (now.empty()) now = NowIso();
      s.generated_timestamp = now;
    } else if (ts.kind == Kind::kString) {
      timestamps[i] = ts.text();
    }
    s.team_id = project->id;
    s.event = t.slot[kEventSlot].text();
    s.json = text;
  }
  std::vector<PersonEvent> person_events;
  person_events.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    person_events.push_back({dom[i] ? &doms[i] : nullptr, stored[i].distinct_id, timestamps[i]});
  }
  state.persons().ProcessEvents(project->id, person_events);
  result->accepted = stored.size();
  const BatchBody batch{body, gzip};
  result->duplicates = state.events().Add(stored, &batch);
  return true;
}

}  // namespace

absl::StatusOr<CaptureResult> IngestCapture(EmulatorState& state, absl::string_view body,
                                            absl::string_view gzip) {
  CaptureResult fast;
  if (IngestFast(state, body, gzip, &fast)) return fast;
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

  std::vector<ParsedEvent> read;
  read.reserve(events->size());
  std::vector<PersonEvent> person_events;
  person_events.reserve(events->size());
  std::string now;
  for (size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    if (!e.is_object() || slices.size() != events->size()) {
      return absl::InvalidArgumentError("request_parsing_error");
    }
    ParsedEvent s;
    absl::Status status = EventFromJson(
        e, absl::string_view(body.data() + slices[i].first, slices[i].second - slices[i].first),
        project->id, &now, &s);
    if (!status.ok()) return status;
    read.push_back(std::move(s));
  }
  std::vector<EventToStore> stored;
  stored.reserve(read.size());
  for (size_t i = 0; i < events->size(); ++i) {
    person_events.push_back({&(*events)[i], read[i].distinct_id});
    stored.push_back(read[i].View());
  }
  state.persons().ProcessEvents(project->id, person_events);
  CaptureResult result;
  result.accepted = stored.size();
  const BatchBody batch{body, gzip};
  result.duplicates = state.events().Add(stored, &batch);
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
  // A gzip body is kept as received for its events' JSON (EventStore).
  const bool gzip = req.body.size() >= 2 && static_cast<unsigned char>(req.body[0]) == 0x1f &&
                    static_cast<unsigned char>(req.body[1]) == 0x8b;
  absl::StatusOr<CaptureResult> result =
      IngestCapture(state, *body, gzip ? absl::string_view(req.body) : absl::string_view());
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
