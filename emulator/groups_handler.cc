#include "emulator/groups_handler.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "emulator/api_errors.h"
#include "emulator/http_util.h"
#include "emulator/person_store.h"
#include "emulator/private_api.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {
namespace {

using nlohmann::json;

// GroupCursorPagination.page_size.
constexpr size_t kPageSize = 100;

json GroupJson(const Group& group) {
  return {{"group_type_index", group.group_type_index},
          {"group_key", group.group_key},
          {"group_properties", group.properties},
          {"created_at", group.created_at}};
}

// PercentEncode encodes a query value as Django's urlencode does.
std::string PercentEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// NextUrl is the request's URL with `cursor` replaced, other parameters in
// the client's order (as DRF's replace_query_param keeps them).
std::string NextUrl(const httplib::Request& req, const std::string& cursor) {
  std::string query;
  const size_t q = req.target.find('?');
  if (q != std::string::npos) {
    for (absl::string_view part : absl::StrSplit(req.target.substr(q + 1), '&')) {
      if (part.empty() || part.substr(0, part.find('=')) == "cursor") continue;
      absl::StrAppend(&query, query.empty() ? "?" : "&", part);
    }
  }
  absl::StrAppend(&query, query.empty() ? "?" : "&", "cursor=", PercentEncode(cursor));
  return absl::StrCat(BaseUrl(req), req.path, query);
}

// The required `group_type_index` parameter, as PostHog validates it.
absl::StatusOr<int> GroupTypeIndex(const httplib::Request& req, absl::string_view message) {
  const std::string text = QueryParam(req, "group_type_index");
  int index = 0;
  if (text.empty()) return ValidationError("invalid_input", message, "group_type_index");
  if (!absl::SimpleAtoi(text, &index) || index < 0) {
    return ValidationError("invalid_input", "A valid integer is required.", "group_type_index");
  }
  return index;
}

void List(EmulatorState& state, int64_t team_id, const httplib::Request& req,
          httplib::Response& res) {
  absl::StatusOr<int> index = GroupTypeIndex(
      req,
      "You must pass ?group_type_index= in this URL. To get a list of valid group types, "
      "call /api/:project_id/groups_types/.");
  if (!index.ok()) return SetError(res, index.status());
  GroupListQuery query;
  query.group_type_index = *index;
  query.key_contains = absl::AsciiStrToLower(QueryParam(req, "group_key"));
  query.search = absl::AsciiStrToLower(QueryParam(req, "search"));
  query.has_search = req.has_param("search");
  query.limit = kPageSize + 1;  // One more tells whether there is a next page.
  const std::string cursor = QueryParam(req, "cursor");
  if (!cursor.empty()) {
    query.after = DecodeGroupCursor(cursor);
    if (!query.after.has_value()) {
      return SetError(res, NotFoundError());  // DRF: NotFound("Invalid cursor").
    }
  }
  std::vector<Group> page = state.persons().ListGroups(team_id, query);
  const bool has_next = page.size() > kPageSize;
  if (has_next) page.resize(kPageSize);
  json results = json::array();
  for (const Group& group : page) results.push_back(GroupJson(group));
  json out = {{"next", has_next ? json(NextUrl(req, EncodeGroupCursor(page.back().created_at,
                                                                      page.back().sequence)))
                                : json()},
              {"previous", json()},
              {"results", std::move(results)}};
  SetJson(res, 200, out);
}

void Create(EmulatorState& state, int64_t team_id, const json& body, httplib::Response& res) {
  const auto index = body.find("group_type_index");
  if (index == body.end() || !index->is_number_integer() || index->get<int64_t>() < 0 ||
      index->get<int64_t>() > 4) {
    return SetError(
        res, ValidationError("invalid_input", "A valid integer is required.", "group_type_index"));
  }
  const auto key = body.find("group_key");
  if (key == body.end() || !key->is_string() || key->get<std::string>().empty()) {
    return SetError(res, ValidationError("required", "This field is required.", "group_key"));
  }
  json properties = body.value("group_properties", json::object());
  if (properties.is_null()) properties = json::object();
  if (!properties.is_object()) {
    return SetError(res,
                    ValidationError("invalid_input", "Must be a JSON object.", "group_properties"));
  }
  std::optional<Group> created = state.persons().CreateGroup(
      team_id, index->get<int>(), key->get<std::string>(), std::move(properties));
  if (!created.has_value()) {
    return SetError(
        res, ValidationError("invalid_input", "A group with this key already exists", "detail"));
  }
  SetJson(res, 201, GroupJson(*created));
}

}  // namespace

std::string EncodeGroupCursor(const std::string& created_at, int64_t sequence) {
  return absl::Base64Escape(absl::StrCat("p=", created_at, "&s=", sequence));
}

std::optional<std::pair<std::string, int64_t>> DecodeGroupCursor(const std::string& cursor) {
  std::string text;
  if (!absl::Base64Unescape(cursor, &text) || !absl::StartsWith(text, "p=")) {
    return std::nullopt;
  }
  const size_t s = text.rfind("&s=");
  int64_t sequence = 0;
  if (s == std::string::npos || !absl::SimpleAtoi(text.substr(s + 3), &sequence)) {
    return std::nullopt;
  }
  return std::make_pair(text.substr(2, s - 2), sequence);
}

void HandleGroupTypes(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                      RequestContext& ctx) {
  absl::StatusOr<AuthorizedRequest> auth = AuthorizePrivate(
      state, req, ctx, nullptr, req.matches[1], "group:read", ThrottleClass::kDefault);
  if (!auth.ok()) return SetError(res, auth.status());
  if (req.method != "GET") {
    return SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
  }
  json out = json::array();
  const std::vector<std::string> types = state.persons().GroupTypes(auth->project->id);
  for (size_t i = 0; i < types.size(); ++i) {
    out.push_back({{"group_type", types[i]},
                   {"group_type_index", i},
                   {"name_singular", nullptr},
                   {"name_plural", nullptr}});
  }
  SetJson(res, 200, out);
}

void HandleGroups(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                  RequestContext& ctx) {
  absl::StatusOr<json> body = ParseJsonBody(req);
  const std::string action = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
  const bool read = req.method == "GET";
  absl::StatusOr<AuthorizedRequest> auth =
      AuthorizePrivate(state, req, ctx, body.ok() ? &*body : nullptr, req.matches[1],
                       read ? "group:read" : "group:write", ThrottleClass::kDefault);
  if (!auth.ok()) return SetError(res, auth.status());
  if (!body.ok()) return SetError(res, body.status());
  const int64_t team_id = auth->project->id;
  const std::string not_allowed = "Method \"" + req.method + "\" not allowed.";

  if (action.empty()) {
    if (req.method == "GET") return List(state, team_id, req, res);
    if (req.method == "POST") return Create(state, team_id, *body, res);
    return SetError(res, MethodNotAllowedError(not_allowed));
  }
  if ((action == "find") != read) return SetError(res, MethodNotAllowedError(not_allowed));
  absl::StatusOr<int> index = GroupTypeIndex(req, "This query parameter is required.");
  if (!index.ok()) return SetError(res, index.status());
  const std::string key = QueryParam(req, "group_key");
  if (key.empty()) {
    return SetError(
        res, ValidationError("invalid_input", "This query parameter is required.", "group_key"));
  }
  std::optional<Group> group = state.persons().GetGroup(team_id, *index, key);
  if (!group.has_value()) return SetError(res, NotFoundError());
  if (action == "find") {
    json out = GroupJson(*group);
    out["notebook"] = nullptr;
    return SetJson(res, 200, out);
  }
  if (action == "update_property") {
    const auto property = body->find("key");
    if (property == body->end() || !property->is_string() || property->get<std::string>().empty()) {
      return SetError(res, ValidationError("required", "This field is required.", "key"));
    }
    const auto value = body->find("value");
    if (value == body->end() || value->is_null()) {
      return SetError(res, ValidationError("required", "This field is required.", "value"));
    }
    group = state.persons().SetGroupProperty(team_id, *index, key, property->get<std::string>(),
                                             *value);
  } else {
    const auto unset = body->find("$unset");
    if (unset == body->end() || !unset->is_string()) {
      return SetError(res,
                      ValidationError("required",
                                      "This field is required and must be a string (the property "
                                      "name to delete).",
                                      "$unset"));
    }
    if (!group->properties.contains(unset->get<std::string>())) {
      return SetError(res, ValidationError("invalid_input",
                                           absl::StrCat("Property '", unset->get<std::string>(),
                                                        "' does not exist on this group."),
                                           "$unset"));
    }
    group = state.persons().UnsetGroupProperty(team_id, *index, key, unset->get<std::string>());
  }
  if (!group.has_value()) return SetError(res, NotFoundError());
  SetJson(res, 200, GroupJson(*group));
}

}  // namespace posthog_emulator
