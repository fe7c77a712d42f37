#include "emulator/flags_handler.h"

#include <openssl/sha.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "emulator/api_errors.h"
#include "emulator/auth.h"
#include "emulator/capture_handler.h"
#include "emulator/flag_matcher.h"
#include "emulator/http_util.h"
#include "emulator/private_api.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

FlagAuthor AuthorOf(const User& u) {
  return {u.id, u.uuid, u.distinct_id, u.first_name, u.last_name, u.email};
}

json GroupTypeMapping(EmulatorState& state, int64_t team_id) {
  json mapping = json::object();
  std::vector<std::string> types = state.persons().GroupTypes(team_id);
  for (size_t i = 0; i < types.size(); ++i) mapping[std::to_string(i)] = types[i];
  return mapping;
}

// RewriteDependencies replaces flag-dependency ids by keys and adds the
// dependency_chain, as the server does for definitions.
void RewriteDependencies(json& filters, const std::vector<json>& flags) {
  auto find = [&](const json& ref) -> const json* {
    std::string s = ref.is_string() ? ref.get<std::string>() : ref.dump();
    int64_t id = 0;
    const bool numeric = absl::SimpleAtoi(s, &id);
    for (const json& f : flags) {
      if (f.value("deleted", false)) continue;
      if ((numeric && f.value("id", int64_t{0}) == id) || f.value("key", "") == s) {
        return &f;
      }
    }
    return nullptr;
  };
  // Chain: dependencies of the dependency first, the dependency last; empty
  // on a cycle or a missing flag.
  std::function<bool(const json&, std::vector<std::string>&, absl::flat_hash_set<std::string>&)>
      chain = [&](const json& flag, std::vector<std::string>& out,
                  absl::flat_hash_set<std::string>& visiting) -> bool {
    const std::string key = flag.value("key", "");
    if (visiting.contains(key)) return false;
    visiting.insert(key);
    const json fl = flag.value("filters", json::object());
    for (const json& g : fl.value("groups", json::array())) {
      for (const json& p : g.value("properties", json::array())) {
        if (p.value("type", "") != "flag") continue;
        const json* dep = find(p.value("key", json()));
        if (dep == nullptr || !chain(*dep, out, visiting)) return false;
      }
    }
    visiting.erase(key);
    if (std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
    return true;
  };
  if (!filters.contains("groups")) return;
  for (json& g : filters["groups"]) {
    if (!g.contains("properties")) continue;
    for (json& p : g["properties"]) {
      if (p.value("type", "") != "flag") continue;
      const json* dep = find(p.value("key", json()));
      std::vector<std::string> out;
      absl::flat_hash_set<std::string> visiting;
      if (dep != nullptr) {
        p["key"] = dep->value("key", "");
        if (!chain(*dep, out, visiting)) out.clear();
      }
      p["dependency_chain"] = out;
    }
  }
}

std::string EtagOf(const std::string& body) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  return absl::StrCat(
      "W/\"", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 8)),
      "\"");
}

std::string StripEtag(std::string tag) {
  tag = std::string(absl::StripAsciiWhitespace(tag));
  if (tag.rfind("W/", 0) == 0) tag = tag.substr(2);
  if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
    tag = tag.substr(1, tag.size() - 2);
  }
  return tag;
}

std::string NewUuid() {
  // Random enough for a request id; format only matters.
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter++;
  const uint64_t t = absl::ToUnixNanos(absl::Now());
  char buf[40];
  snprintf(buf, sizeof(buf), "%08llx-%04llx-4%03llx-8%03llx-%012llx",
           static_cast<unsigned long long>((t >> 32) & 0xffffffff),
           static_cast<unsigned long long>((t >> 16) & 0xffff),
           static_cast<unsigned long long>(t & 0xfff), static_cast<unsigned long long>(n & 0xfff),
           static_cast<unsigned long long>(n & 0xffffffffffffULL));
  return buf;
}

}  // namespace

json DefinitionsJson(EmulatorState& state, int64_t team_id) {
  std::vector<json> stored = state.flags().Stored(team_id);
  json flags = json::array();
  for (const json& f : stored) {
    if (f.value("deleted", false) || f.value("is_remote_configuration", false)) {
      continue;
    }
    json filters = f.value("filters", json::object());
    RewriteDependencies(filters, stored);
    json out = {{"id", f.value("id", int64_t{0})},
                {"team_id", team_id},
                {"name", f.value("name", "")},
                {"key", f.value("key", "")},
                {"filters", filters},
                {"deleted", false},
                {"active", f.value("active", true)},
                {"ensure_experience_continuity", f.value("ensure_experience_continuity", false)},
                {"has_encrypted_payloads", f.value("has_encrypted_payloads", false)},
                {"version", f.value("version", int64_t{1})},
                {"evaluation_runtime", f.value("evaluation_runtime", "all")},
                {"evaluation_tags", f.value("evaluation_tags", json::array())}};
    if (f.contains("bucketing_identifier")) {
      out["bucketing_identifier"] = f["bucketing_identifier"];
    }
    flags.push_back(std::move(out));
  }
  json cohorts = json::object();
  for (const auto& [id, cohort] : state.flags().Cohorts(team_id)) {
    if (cohort.is_static) continue;
    cohorts[std::to_string(id)] = cohort.properties;
  }
  return {{"flags", flags},
          {"group_type_mapping", GroupTypeMapping(state, team_id)},
          {"cohorts", cohorts},
          {"minimal_flag_called_events", true}};
}

void HandleFlagCollection(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                          RequestContext& ctx) {
  absl::StatusOr<json> body = ParseJsonBody(req);
  const bool read = req.method == "GET";
  absl::StatusOr<AuthorizedRequest> auth =
      AuthorizePrivate(state, req, ctx, body.ok() ? &*body : nullptr, req.matches[1],
                       read ? "feature_flag:read" : "feature_flag:write", ThrottleClass::kDefault);
  if (!auth.ok()) return SetError(res, auth.status());
  if (!body.ok()) return SetError(res, body.status());
  const int64_t team_id = auth->project->id;
  if (req.method == "POST") {
    absl::StatusOr<json> created =
        state.flags().Create(team_id, *body, AuthorOf(*auth->principal.user));
    if (!created.ok()) return SetError(res, created.status());
    return SetJson(res, 201, *created);
  }
  if (!read) {
    return SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
  }
  long limit = 100;
  long offset = 0;
  if (!absl::SimpleAtoi(QueryParam(req, "limit"), &limit) || limit <= 0) limit = 100;
  if (!absl::SimpleAtoi(QueryParam(req, "offset"), &offset) || offset < 0) offset = 0;
  auto [page, count] = state.flags().List(team_id, offset, limit);
  json out = {{"count", count}, {"results", page}};
  SetPageLinks(req, offset, limit, offset + limit < static_cast<long>(count), out);
  SetJson(res, 200, out);
}

void HandleFlagItem(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                    RequestContext& ctx) {
  absl::StatusOr<json> body = ParseJsonBody(req);
  const bool read = req.method == "GET";
  absl::StatusOr<AuthorizedRequest> auth =
      AuthorizePrivate(state, req, ctx, body.ok() ? &*body : nullptr, req.matches[1],
                       read ? "feature_flag:read" : "feature_flag:write", ThrottleClass::kDefault);
  if (!auth.ok()) return SetError(res, auth.status());
  if (!body.ok()) return SetError(res, body.status());
  const int64_t team_id = auth->project->id;
  int64_t id = 0;
  if (!absl::SimpleAtoi(std::string(req.matches[2]), &id)) {
    return SetError(res, NotFoundError());
  }
  if (req.method == "GET") {
    std::optional<json> flag = state.flags().Get(team_id, id);
    if (!flag.has_value()) return SetError(res, NotFoundError());
    return SetJson(res, 200, *flag);
  }
  if (req.method == "DELETE") {
    return SetError(res, MethodNotAllowedError("Method \"DELETE\" not allowed."));
  }
  if (req.method == "PATCH" || req.method == "PUT") {
    absl::StatusOr<json> updated = state.flags().Update(team_id, id, *body, req.method == "PATCH",
                                                        AuthorOf(*auth->principal.user));
    if (!updated.ok()) return SetError(res, updated.status());
    return SetJson(res, 200, *updated);
  }
  SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
}

void HandleDefinitions(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                       RequestContext& ctx) {
  std::shared_ptr<const Directory> directory = state.directory();
  const std::string auth_header = req.get_header_value("Authorization");
  ctx.auth = auth_header.empty() ? AuthMethod::kNone : AuthMethod::kBearer;
  const std::string token = QueryParam(req, "token");
  const Project* project = directory->ProjectByToken(token);
  if (project == nullptr) {
    if (auth_header.empty()) return SetError(res, NotAuthenticatedError());
    return SetError(res, AuthenticationFailedError(token.empty() ? "No API token provided."
                                                                 : "Project API key invalid."));
  }
  absl::Status auth = AuthenticateDefinitions(*directory, req, *project);
  if (!auth.ok()) return SetError(res, auth);
  if (state.rate_limiter().Check(ThrottleClass::kDefinitions, std::to_string(project->id))) {
    return SetJson(res, 429,
                   ErrorBody("validation_error", "rate_limit_exceeded", "Rate limit exceeded"));
  }
  const std::string body = DefinitionsJson(state, project->id).dump();
  const std::string etag = EtagOf(body);
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", "private, must-revalidate");
  const std::string if_none_match = req.get_header_value("If-None-Match");
  if (!if_none_match.empty()) {
    for (absl::string_view candidate : absl::StrSplit(if_none_match, ',')) {
      if (StripEtag(std::string(candidate)) == StripEtag(etag)) {
        res.status = 304;
        return;
      }
    }
  }
  res.status = 200;
  res.set_content(body, "application/json");
}

void HandleRemoteEvaluation(EmulatorState& state, bool decide, const httplib::Request& req,
                            httplib::Response& res, RequestContext& ctx) {
  ctx.auth = AuthMethod::kToken;
  if (req.method == "OPTIONS") {
    res.status = 204;
    return;
  }
  long version = decide ? 1 : 1;
  if (!QueryParam(req, "v").empty() && !absl::SimpleAtoi(QueryParam(req, "v"), &version)) {
    version = 1;
  }
  // Shapes: "v1" featureFlags map; "v2" flags with reason and metadata;
  // decide v1 list of keys; decide v2 map of enabled flags only.
  enum class Shape { kV1, kV2, kDecideList, kDecideEnabled } shape = Shape::kV1;
  if (decide) {
    shape = version >= 4   ? Shape::kV2
            : version == 3 ? Shape::kV1
            : version == 2 ? Shape::kDecideEnabled
                           : Shape::kDecideList;
  } else {
    shape = version >= 2 ? Shape::kV2 : Shape::kV1;
  }
  json body = json::object();
  if (req.method == "POST") {
    absl::StatusOr<std::string> decoded = DecodeRequestBody(req, kEventBodyLimit);
    if (!decoded.ok()) {
      res.status = absl::IsResourceExhausted(decoded.status()) ? 413 : 400;
      res.set_content("Failed to decode request: invalid body", "text/plain");
      return;
    }
    body = json::parse(*decoded, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      res.status = 400;
      res.set_content("Failed to decode request: invalid JSON", "text/plain");
      return;
    }
  }
  std::string token;
  for (const char* name : {"token", "$token", "api_key"}) {
    if (body.contains(name) && body[name].is_string()) {
      token = body[name].get<std::string>();
      break;
    }
  }
  if (token.empty()) token = QueryParam(req, "token");
  std::shared_ptr<const Directory> directory = state.directory();
  if (token.empty()) {
    res.status = 401;
    res.set_content("No API token provided. Either pass the api_key or token field.", "text/plain");
    return;
  }
  const Project* project = directory->ProjectByToken(token);
  if (project == nullptr) {
    res.status = 401;
    res.set_content(
        "The provided API key is invalid or has expired. Please check your "
        "API key and try again.",
        "text/plain");
    return;
  }
  const int64_t team_id = project->id;
  const std::string request_id = NewUuid();
  const int64_t evaluated_at = absl::ToUnixMillis(absl::Now());
  if (req.method == "GET") {
    SetJson(res, 200,
            {{"flags", json::object()},
             {"errorsWhileComputingFlags", false},
             {"requestId", request_id},
             {"evaluatedAt", evaluated_at}});
    return;
  }
  json distinct = body.contains("distinct_id")    ? body["distinct_id"]
                  : body.contains("$distinct_id") ? body["$distinct_id"]
                                                  : json();
  if (distinct.is_null() || (distinct.is_string() && distinct.get<std::string>().empty())) {
    res.status = 400;
    res.set_content(
        "The distinct_id field is missing from the request. Please include a "
        "valid identifier.",
        "text/plain");
    return;
  }
  FlagEvaluationInput input;
  input.distinct_id = distinct.is_string() ? distinct.get<std::string>() : distinct.dump();
  if (input.distinct_id.size() > 200) input.distinct_id.resize(200);
  for (const char* name : {"device_id", "$device_id"}) {
    if (body.contains(name) && body[name].is_string()) {
      input.device_id = body[name].get<std::string>();
    }
  }
  const bool only_overrides = QueryParam(req, "only_use_override_person_properties") == "true";
  if (!only_overrides) {
    std::optional<Person> person = state.persons().GetByDistinctId(team_id, input.distinct_id);
    if (person.has_value()) {
      input.person_properties = person->properties;
      input.person_distinct_ids = person->distinct_ids;
    }
  }
  if (body.contains("person_properties") && body["person_properties"].is_object()) {
    for (auto it = body["person_properties"].begin(); it != body["person_properties"].end(); ++it) {
      input.person_properties[it.key()] = *it;
    }
  }
  json mapping = GroupTypeMapping(state, team_id);
  if (body.contains("groups") && body["groups"].is_object()) {
    for (auto it = body["groups"].begin(); it != body["groups"].end(); ++it) {
      input.groups[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    }
  }
  for (auto it = input.groups.begin(); it != input.groups.end(); ++it) {
    json props = json::object();
    for (auto m = mapping.begin(); m != mapping.end(); ++m) {
      if (*m != it.key()) continue;
      std::optional<Group> group =
          state.persons().GetGroup(team_id, std::stoi(m.key()), it->get<std::string>());
      if (group.has_value()) props = group->properties;
    }
    if (body.contains("group_properties") && body["group_properties"].is_object() &&
        body["group_properties"].contains(it.key()) &&
        body["group_properties"][it.key()].is_object()) {
      for (auto p = body["group_properties"][it.key()].begin();
           p != body["group_properties"][it.key()].end(); ++p) {
        props[p.key()] = *p;
      }
    }
    input.group_properties[it.key()] = props;
  }
  std::vector<std::string> only_keys;
  for (const char* name : {"flag_keys_to_evaluate", "flag_keys"}) {
    if (body.contains(name) && body[name].is_array()) {
      for (const json& k : body[name]) {
        if (k.is_string()) only_keys.push_back(k.get<std::string>());
      }
    }
  }
  FlagMatcher matcher(state.flags().Stored(team_id), mapping, state.flags().Cohorts(team_id));
  std::vector<FlagResult> results;
  if (!body.value("disable_flags", false)) {
    results = matcher.EvaluateAll(input, only_keys);
  }

  json out = json::object();
  if (shape == Shape::kV2) {
    json flags = json::object();
    for (const FlagResult& r : results) {
      flags[r.key] = {
          {"key", r.key},
          {"enabled", r.enabled},
          {"variant", r.variant.has_value() ? json(*r.variant) : json()},
          {"reason",
           {{"code", r.reason_code},
            {"condition_index", r.condition_index.has_value() ? json(*r.condition_index) : json()},
            {"description", r.reason_description}}},
          {"metadata",
           {{"id", r.id},
            {"version", r.version},
            {"description", r.description.empty() ? json() : json(r.description)},
            {"payload", r.payload},
            {"has_experiment", r.has_experiment}}}};
    }
    out["flags"] = flags;
  } else if (shape == Shape::kV1) {
    json values = json::object();
    json payloads = json::object();
    for (const FlagResult& r : results) {
      values[r.key] = r.Value();
      if (r.enabled && !r.payload.is_null()) payloads[r.key] = r.payload;
    }
    out["featureFlags"] = values;
    out["featureFlagPayloads"] = payloads;
  } else if (shape == Shape::kDecideEnabled) {
    json values = json::object();
    for (const FlagResult& r : results) {
      if (r.enabled) values[r.key] = r.Value();
    }
    out["featureFlags"] = values;
  } else {
    json keys = json::array();
    for (const FlagResult& r : results) {
      if (r.enabled) keys.push_back(r.key);
    }
    out["featureFlags"] = keys;
  }
  out["errorsWhileComputingFlags"] = false;
  out["requestId"] = request_id;
  out["evaluatedAt"] = evaluated_at;
  if (decide || QueryParam(req, "config") == "true") {
    out["config"] = {{"enable_collect_everything", true}};
    out["toolbarParams"] = json::object();
    out["isAuthenticated"] = false;
    out["supportedCompression"] = {"gzip", "gzip-js"};
    out["sessionRecording"] = false;
  }
  SetJson(res, 200, out);
}

}  // namespace posthog_emulator
