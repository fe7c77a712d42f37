#include "server/persons/persons.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/common/request_limits.h"
#include "server/common/status_macros.h"
#include "server/posthog/json_struct.h"
#include "server/posthog/property_updates.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using posthog::v1::PersonRef;

std::string OperatorName(posthog::v1::PropertyOperator op) {
  if (op == posthog::v1::PROPERTY_OPERATOR_UNSPECIFIED) return "exact";
  constexpr absl::string_view kPrefix = "PROPERTY_OPERATOR_";
  return absl::AsciiStrToLower(
      absl::string_view(posthog::v1::PropertyOperator_Name(op)).substr(kPrefix.size()));
}

absl::Status NotFound(absl::string_view what) {
  absl::Status status = absl::NotFoundError(absl::StrCat("no person ", what));
  AttachErrorInfo(status, reasons::kUpstreamNotFound);
  return status;
}

}  // namespace

absl::StatusOr<posthog::v1::Person> PersonFromJson(const json& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("a person is not a JSON object");
  posthog::v1::Person person;
  if (value.contains("uuid") && value["uuid"].is_string()) {
    person.set_uuid(value["uuid"].get<std::string>());
  }
  if (value.contains("id")) {
    if (value["id"].is_number_integer()) {
      person.set_id(value["id"].get<int64_t>());
    } else if (value["id"].is_string() && person.uuid().empty()) {
      person.set_uuid(value["id"].get<std::string>());
    }
  }
  if (person.uuid().empty()) return absl::InvalidArgumentError("a person has no uuid");
  if (value.contains("name") && value["name"].is_string()) {
    person.set_name(value["name"].get<std::string>());
  } else if (value.contains("name") && value["name"].is_number()) {
    person.set_name(value["name"].dump());
  }
  if (value.contains("distinct_ids") && value["distinct_ids"].is_array()) {
    for (const json& id : value["distinct_ids"]) {
      if (id.is_string()) person.add_distinct_ids(id.get<std::string>());
    }
  }
  if (value.contains("properties")) {
    *person.mutable_properties() = StructFromJson(value["properties"]);
  }
  if (value.contains("created_at") && value["created_at"].is_string()) {
    absl::Time time;
    std::string error;
    if (absl::ParseTime(absl::RFC3339_full, value["created_at"].get<std::string>(), &time,
                        &error)) {
      const int64_t seconds = absl::ToUnixSeconds(time);
      person.mutable_create_time()->set_seconds(seconds);
      person.mutable_create_time()->set_nanos(
          static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
    }
  }
  if (value.contains("is_identified") && value["is_identified"].is_boolean()) {
    person.set_is_identified(value["is_identified"].get<bool>());
  }
  return person;
}

UpstreamUrl PersonsUrl(const PostHogClient& client) {
  UpstreamUrl url;
  url.Literal("api")
      .Literal("projects")
      .Segment(client.project().project_id)
      .Literal("persons")
      .TrailingSlash();
  return url;
}

std::string PersonsPath(const PostHogClient& client) { return PersonsUrl(client).Path(); }

absl::StatusOr<std::string> PersonsListQuery(const posthog::v1::ListPersonsRequest& request) {
  UpstreamUrl query;
  if (!request.distinct_id().empty()) query.Query("distinct_id", request.distinct_id());
  if (!request.email().empty()) query.Query("email", request.email());
  if (!request.search().empty()) query.Query("search", request.search());
  if (request.properties_size() > 0) {
    json filters = json::array();
    std::vector<FieldViolation> violations;
    for (int i = 0; i < request.properties_size(); ++i) {
      const posthog::v1::PropertyFilter& filter = request.properties(i);
      if (filter.key().empty()) {
        violations.push_back({absl::StrCat("properties[", i, "].key"), "must not be empty"});
        continue;
      }
      json item = {{"key", filter.key()},
                   {"operator", filter.raw_operator().empty() ? OperatorName(filter.operator_())
                                                              : filter.raw_operator()},
                   {"type", filter.type().empty() ? "person" : filter.type()}};
      if (filter.has_value()) item["value"] = JsonFromValue(filter.value());
      if (filter.has_group_type_index()) item["group_type_index"] = filter.group_type_index();
      if (filter.negation()) item["negation"] = true;
      filters.push_back(std::move(item));
    }
    if (!violations.empty()) {
      return InvalidArgumentWithViolations("a property filter is invalid", violations);
    }
    query.Query("properties", filters.dump());
  }
  if (request.cohort_id() < 0) {
    return InvalidArgumentWithViolations("cohort_id is invalid",
                                         {{"cohort_id", "must not be negative"}});
  }
  if (request.cohort_id() > 0) query.Query("cohort", request.cohort_id());
  RETURN_IF_ERROR(query.status());
  return query.EncodedQuery();
}

absl::StatusOr<json> Persons::FindByDistinctId(const std::string& distinct_id,
                                               const CallContext& context) const {
  PostHogRequest request;
  ASSIGN_OR_RETURN(
      request.path,
      PersonsUrl(*client_).Query("distinct_id", distinct_id).Query("limit", 1).Build());
  request.headers = {{"Accept", "application/json"}};
  request.bearer = KeyKind::kPersonalApiKey;
  ASSIGN_OR_RETURN(json body, Call(request, context));
  if (!body.is_object() || !body.contains("results") || !body["results"].is_array()) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("PostHog answered ", client_->Describe(request), " without a `results` list"));
    AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
    return status;
  }
  if (body["results"].empty())
    return NotFound(absl::StrCat("has distinct id \"", distinct_id, "\""));
  return body["results"][0];
}

absl::StatusOr<UpstreamUrl> Persons::PersonUrl(const PersonRef& ref,
                                               const CallContext& context) const {
  switch (ref.ref_case()) {
    case PersonRef::kUuid:
      if (ref.uuid().empty()) break;
      RETURN_IF_ERROR(ValidatePersonUuid("person.uuid", ref.uuid()));
      return PersonsUrl(*client_).Segment(ref.uuid()).TrailingSlash();
    case PersonRef::kId:
      if (ref.id() == 0) break;
      RETURN_IF_ERROR(ValidatePositiveId("person.id", ref.id()));
      return PersonsUrl(*client_).Segment(ref.id()).TrailingSlash();
    case PersonRef::kDistinctId: {
      if (ref.distinct_id().empty()) break;
      ASSIGN_OR_RETURN(json person, FindByDistinctId(ref.distinct_id(), context));
      absl::StatusOr<posthog::v1::Person> converted = PersonFromJson(person);
      if (!converted.ok() || !IsUuid(converted->uuid())) {
        absl::Status status = absl::UnavailableError(
            "PostHog answered the distinct-id lookup with a person whose uuid is not a UUID");
        AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
        return status;
      }
      return PersonsUrl(*client_).Segment(converted->uuid()).TrailingSlash();
    }
    case PersonRef::REF_NOT_SET:
      break;
  }
  return InvalidArgumentWithViolations("person must name a person",
                                       {{"person", "set one of uuid, id (> 0) or distinct_id"}});
}

absl::StatusOr<posthog::v1::Person> Persons::Get(const PersonRef& ref,
                                                 const CallContext& context) const {
  json body;
  if (ref.ref_case() == PersonRef::kDistinctId && !ref.distinct_id().empty()) {
    ASSIGN_OR_RETURN(body, FindByDistinctId(ref.distinct_id(), context));
  } else {
    ASSIGN_OR_RETURN(UpstreamUrl url, PersonUrl(ref, context));
    PostHogRequest request;
    ASSIGN_OR_RETURN(request.path, url.Build());
    request.headers = {{"Accept", "application/json"}};
    request.bearer = KeyKind::kPersonalApiKey;
    ASSIGN_OR_RETURN(body, Call(request, context));
  }
  absl::StatusOr<posthog::v1::Person> person = PersonFromJson(body);
  if (!person.ok()) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("PostHog sent a person the gateway cannot read: ", person.status().message()));
    AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
    return status;
  }
  return person;
}

absl::Status Persons::Delete(const PersonRef& ref, bool delete_events,
                             const CallContext& context) const {
  ASSIGN_OR_RETURN(UpstreamUrl url, PersonUrl(ref, context));
  PostHogRequest request;
  request.method = "DELETE";
  // PostHog checks that the flag is present, whatever its value.
  if (delete_events) url.Query("delete_events", "true");
  ASSIGN_OR_RETURN(request.path, url.Build());
  request.bearer = KeyKind::kPersonalApiKey;
  return Call(request, context).status();
}

absl::Status Persons::UpdateProperties(const PersonRef& ref, const google::protobuf::Struct& set,
                                       const std::vector<std::string>& unset,
                                       const CallContext& context) const {
  if (set.fields().empty() && unset.empty()) {
    return InvalidArgumentWithViolations("nothing to update",
                                         {{"set", "set or unset at least one property"}});
  }
  const int64_t changes = static_cast<int64_t>(set.fields_size() + unset.size());
  if (changes > kMaxPersonPropertyChanges) {
    const std::string limit = absl::StrCat("set and unset together change at most ",
                                           kMaxPersonPropertyChanges, " properties per request");
    std::vector<FieldViolation> violations;
    if (!set.fields().empty()) violations.push_back({"set", limit});
    if (!unset.empty()) violations.push_back({"unset", limit});
    return InvalidArgumentWithViolations(
        absl::StrCat("UpdatePersonProperties changes ", changes, " properties, more than the ",
                     kMaxPersonPropertyChanges, " one request may change; split the request"),
        violations);
  }
  ASSIGN_OR_RETURN(UpstreamUrl url, PersonUrl(ref, context));
  ASSIGN_OR_RETURN(const std::string update_path,
                   UpstreamUrl(url).Literal("update_property").TrailingSlash().Build());
  ASSIGN_OR_RETURN(const std::string delete_path,
                   UpstreamUrl(url).Literal("delete_property").TrailingSlash().Build());
  return ApplyPropertyUpdates(
      update_path, delete_path, set, unset, context,
      [&](const PostHogRequest& request) { return Call(request, context); });
}

absl::StatusOr<json> Persons::Call(const PostHogRequest& request,
                                   const CallContext& context) const {
  if (pacer_ == nullptr) return client_->CallJson(request, context);
  return pacer_->Run(context.deadline, context.is_cancelled,
                     [&] { return client_->CallJson(request, context); });
}

}  // namespace posthog_gateway
