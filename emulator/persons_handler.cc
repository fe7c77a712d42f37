#include "emulator/persons_handler.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "emulator/api_errors.h"
#include "emulator/flag_matcher.h"
#include "emulator/http_util.h"
#include "emulator/private_api.h"
#include "re2/re2.h"

namespace posthog_emulator {
namespace {

using nlohmann::json;

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxDistinctIds = 1000;

bool LooksLikeUuid(const std::string& s) {
  static const LazyRE2 kUuid = {
      "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
      "[0-9a-fA-F]{12}$"};
  return RE2::FullMatch(s, *kUuid);
}

// DisplayName follows PostHog's get_person_name.
json DisplayName(const Person& p) {
  for (const char* key :
       {"email", "Email", "$email", "name", "Name", "username", "Username", "UserName"}) {
    auto it = p.properties.find(key);
    if (it != p.properties.end() && it->is_string() && !it->get<std::string>().empty()) {
      return *it;
    }
  }
  for (const std::string& d : p.distinct_ids) {
    if (!LooksLikeUuid(d)) return d;
  }
  if (!p.distinct_ids.empty()) return p.distinct_ids[0];
  return std::to_string(p.id);
}

// Non-UUID distinct_ids first, at most 1000.
json DistinctIds(const Person& p) {
  json out = json::array();
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& d : p.distinct_ids) {
      if (out.size() >= kMaxDistinctIds) break;
      if (LooksLikeUuid(d) == (pass == 1)) out.push_back(d);
    }
  }
  return out;
}

}  // namespace

json PersonListItem(const Person& p) {
  return {{"type", "person"},
          {"id", p.uuid},
          {"uuid", p.uuid},
          {"created_at", p.created_at},
          {"last_seen_at", nullptr},
          {"properties", p.properties},
          {"is_identified", p.is_identified},
          {"name", DisplayName(p)},
          {"distinct_ids", DistinctIds(p)},
          {"matched_recordings", json::array()},
          {"value_at_data_point", nullptr}};
}

json PersonDetail(const Person& p) {
  return {{"id", p.id},
          {"name", DisplayName(p)},
          {"distinct_ids", DistinctIds(p)},
          {"properties", p.properties},
          {"created_at", p.created_at},
          {"uuid", p.uuid}};
}

void HandlePersons(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                   RequestContext& ctx) {
  absl::StatusOr<json> body = ParseJsonBody(req);
  const bool read = req.method == "GET";
  absl::StatusOr<AuthorizedRequest> auth =
      AuthorizePrivate(state, req, ctx, body.ok() ? &*body : nullptr, req.matches[1],
                       read ? "person:read" : "person:write", ThrottleClass::kPersons);
  if (!auth.ok()) return SetError(res, auth.status());
  if (req.method == "POST") {
    return SetError(res, MethodNotAllowedError("Creating persons via this API is not allowed. "
                                               "Please create persons by sending an $identify "
                                               "event. See https://posthog.com/docs/"
                                               "product-analytics/identify for details."));
  }
  if (!read) {
    return SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
  }
  const int64_t team_id = auth->project->id;

  PersonListQuery query;
  long limit = kDefaultLimit;
  long offset = 0;
  if (!QueryParam(req, "limit").empty() &&
      (!absl::SimpleAtoi(QueryParam(req, "limit"), &limit) || limit <= 0)) {
    limit = kDefaultLimit;
  }
  if (!QueryParam(req, "offset").empty() &&
      (!absl::SimpleAtoi(QueryParam(req, "offset"), &offset) || offset < 0)) {
    offset = 0;
  }
  query.limit = static_cast<size_t>(limit);
  query.offset = static_cast<size_t>(offset);
  query.distinct_id = QueryParam(req, "distinct_id");
  query.email = QueryParam(req, "email");

  std::vector<std::function<bool(const Person&)>> predicates;
  const std::string search = absl::AsciiStrToLower(QueryParam(req, "search"));
  if (!search.empty()) {
    predicates.push_back([search](const Person& p) {
      auto e = p.properties.find("email");
      if (e != p.properties.end() && e->is_string() &&
          absl::StrContains(absl::AsciiStrToLower(e->get<std::string>()), search)) {
        return true;
      }
      for (const std::string& d : p.distinct_ids) {
        if (absl::AsciiStrToLower(d) == search) return true;
      }
      return false;
    });
  }
  const std::string properties = QueryParam(req, "properties");
  if (!properties.empty()) {
    json filters = json::parse(properties, nullptr, false);
    if (filters.is_object() && filters.contains("values")) {
      filters = filters["values"];  // a property group
    }
    if (filters.is_discarded() || !filters.is_array()) {
      return SetError(res,
                      ValidationError("invalid_input", "Properties are unparsable!", "properties"));
    }
    predicates.push_back([filters](const Person& p) {
      for (const json& f : filters) {
        if (!f.is_object()) continue;
        if (f.value("type", "person") != "person") continue;
        if (!MatchProperty(f, p.properties)) return false;
      }
      return true;
    });
  }
  const std::string cohort = QueryParam(req, "cohort");
  if (!cohort.empty()) {
    int64_t cohort_id = 0;
    if (!absl::SimpleAtoi(cohort, &cohort_id)) {
      return SetError(res, NotFoundError());
    }
    auto cohorts = state.flags().Cohorts(team_id);
    if (!cohorts.contains(cohort_id)) return SetError(res, NotFoundError());
    auto matcher =
        std::make_shared<FlagMatcher>(std::vector<json>{}, json::object(), std::move(cohorts));
    predicates.push_back([matcher, cohort_id](const Person& p) {
      return matcher->MatchCohort(cohort_id, p.properties, p.distinct_ids);
    });
  }
  if (!predicates.empty()) {
    query.predicate = [predicates](const Person& p) {
      for (const auto& pred : predicates) {
        if (!pred(p)) return false;
      }
      return true;
    };
  }
  std::vector<Person> page = state.persons().List(team_id, query);
  json results = json::array();
  for (const Person& p : page) results.push_back(PersonListItem(p));
  json out = {{"results", results}};
  SetPageLinks(req, offset, limit, page.size() >= static_cast<size_t>(limit), out);
  if (req.has_param("include_total")) {
    PersonListQuery all = query;
    all.offset = 0;
    all.limit = static_cast<size_t>(-1);
    out["count"] = all.predicate || !all.email.empty() || !all.distinct_id.empty()
                       ? state.persons().List(team_id, all).size()
                       : state.persons().PersonCount(team_id);
  }
  SetJson(res, 200, out);
}

void HandlePerson(EmulatorState& state, const httplib::Request& req, httplib::Response& res,
                  RequestContext& ctx) {
  absl::StatusOr<json> body = ParseJsonBody(req);
  const bool read = req.method == "GET";
  absl::StatusOr<AuthorizedRequest> auth =
      AuthorizePrivate(state, req, ctx, body.ok() ? &*body : nullptr, req.matches[1],
                       read ? "person:read" : "person:write", ThrottleClass::kPersons);
  if (!auth.ok()) return SetError(res, auth.status());
  if (!body.ok()) return SetError(res, body.status());
  const int64_t team_id = auth->project->id;
  const std::string id = req.matches[2];
  const std::string action = req.matches.size() > 3 ? std::string(req.matches[3]) : "";

  std::optional<Person> person;
  int64_t pk = 0;
  if (absl::SimpleAtoi(id, &pk)) {
    person = state.persons().GetById(team_id, pk);
  } else if (LooksLikeUuid(id)) {
    person = state.persons().GetByUuid(team_id, absl::AsciiStrToLower(id));
  } else {
    return SetError(res, ValidationError("invalid_input",
                                         "The ID provided does not look like a personID. If "
                                         "you are using a distinctId, please use "
                                         "/persons?distinct_id=" +
                                             id + " instead."));
  }
  if (!person.has_value()) return SetError(res, NotFoundError());

  if (action.empty()) {
    if (req.method == "GET") return SetJson(res, 200, PersonDetail(*person));
    if (req.method == "DELETE") {
      state.persons().Delete(team_id, person->id);
      if (req.has_param("delete_events")) {
        state.events().DeleteForDistinctIds(team_id, person->distinct_ids);
      }
      res.status = 202;
      return;
    }
    if (req.method == "PATCH" || req.method == "PUT") {
      if (body->contains("properties") && (*body)["properties"].is_object()) {
        for (auto it = (*body)["properties"].begin(); it != (*body)["properties"].end(); ++it) {
          state.persons().SetProperty(team_id, person->id, it.key(), *it);
        }
      }
      res.status = 202;
      return;
    }
    return SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
  }
  if (req.method != "POST") {
    return SetError(res, MethodNotAllowedError("Method \"" + req.method + "\" not allowed."));
  }
  if (action == "update_property") {
    for (const char* field : {"key", "value"}) {
      if (!body->contains(field)) {
        // PostHog's body for this case has code and detail swapped.
        SetJson(res, 400,
                {{"attr", field},
                 {"code", "This field is required."},
                 {"detail", "required"},
                 {"type", "validation_error"}});
        return;
      }
    }
    const json& key = (*body)["key"];
    state.persons().SetProperty(team_id, person->id,
                                key.is_string() ? key.get<std::string>() : key.dump(),
                                (*body)["value"]);
    res.status = 202;
    return;
  }
  if (action == "delete_property") {
    auto unset = body->find("$unset");
    if (unset == body->end() || !unset->is_string()) {
      return SetError(res, ValidationError("required", "This field is required.", "$unset"));
    }
    state.persons().UnsetProperty(team_id, person->id, unset->get<std::string>());
    SetJson(res, 201, {{"success", true}});
    return;
  }
  SetError(res, NotFoundError());
}

}  // namespace posthog_emulator
