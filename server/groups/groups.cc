#include "server/groups/groups.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
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

// A search or key filter longer than this is refused: it only narrows a
// list, and PostHog's keys are at most 400 characters.
constexpr size_t kMaxGroupFilterBytes = 1000;

absl::Status MalformedAnswer(absl::string_view what, const absl::Status& why) {
  absl::Status status = absl::UnavailableError(
      absl::StrCat("PostHog sent ", what, " the gateway cannot read: ", why.message()));
  AttachErrorInfo(status, reasons::kUpstreamMalformedResponse);
  return status;
}

// GroupQuery is the groups endpoint's `action` route with the group named
// in the query, as posthog/api/group.py reads it.
absl::StatusOr<std::string> GroupActionTarget(const PostHogClient& client, absl::string_view action,
                                              int64_t index, const std::string& key) {
  UpstreamUrl url = GroupsUrl(client);
  if (!action.empty()) url.Literal(action).TrailingSlash();
  return url.Query("group_type_index", index).Query("group_key", key).Build();
}

absl::Status CheckGroup(int64_t index, const std::string& key) {
  std::vector<FieldViolation> violations;
  if (absl::Status bad = ValidateGroupTypeIndex("group_type_index", index); !bad.ok()) {
    violations.push_back({"group_type_index", "must be between 0 and 4"});
  }
  if (absl::Status bad = ValidateGroupKey("group_key", key); !bad.ok()) {
    violations.push_back(
        {"group_key", key.empty() ? "must not be empty" : "at most 400 bytes, without NUL"});
  }
  if (violations.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations("the group is not a valid group name", violations);
}

}  // namespace

absl::StatusOr<posthog::v1::Group> GroupFromJson(const json& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("a group is not a JSON object");
  const auto index = value.find("group_type_index");
  const auto key = value.find("group_key");
  if (index == value.end() || !index->is_number_integer()) {
    return absl::InvalidArgumentError("a group has no integer group_type_index");
  }
  if (key == value.end() || !key->is_string()) {
    return absl::InvalidArgumentError("a group has no string group_key");
  }
  posthog::v1::Group group;
  group.set_group_type_index(index->get<int32_t>());
  group.set_group_key(key->get<std::string>());
  if (value.contains("group_properties")) {
    *group.mutable_group_properties() = StructFromJson(value["group_properties"]);
  }
  if (value.contains("created_at") && value["created_at"].is_string()) {
    absl::Time time;
    std::string error;
    if (absl::ParseTime(absl::RFC3339_full, value["created_at"].get<std::string>(), &time,
                        &error)) {
      const int64_t seconds = absl::ToUnixSeconds(time);
      group.mutable_create_time()->set_seconds(seconds);
      group.mutable_create_time()->set_nanos(
          static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
    }
  }
  return group;
}

absl::StatusOr<posthog::v1::GroupType> GroupTypeFromJson(const json& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("a group type is not a JSON object");
  const auto index = value.find("group_type_index");
  const auto name = value.find("group_type");
  if (index == value.end() || !index->is_number_integer() || name == value.end() ||
      !name->is_string()) {
    return absl::InvalidArgumentError("a group type has no group_type and group_type_index");
  }
  posthog::v1::GroupType type;
  type.set_group_type_index(index->get<int32_t>());
  type.set_group_type(name->get<std::string>());
  if (value.contains("name_singular") && value["name_singular"].is_string()) {
    type.set_name_singular(value["name_singular"].get<std::string>());
  }
  if (value.contains("name_plural") && value["name_plural"].is_string()) {
    type.set_name_plural(value["name_plural"].get<std::string>());
  }
  return type;
}

UpstreamUrl GroupsUrl(const PostHogClient& client) {
  UpstreamUrl url;
  url.Literal("api")
      .Literal("projects")
      .Segment(client.project().project_id)
      .Literal("groups")
      .TrailingSlash();
  return url;
}

std::string GroupsPath(const PostHogClient& client) { return GroupsUrl(client).Path(); }

absl::StatusOr<std::string> GroupsListQuery(const posthog::v1::ListGroupsRequest& request) {
  std::vector<FieldViolation> violations;
  if (!ValidateGroupTypeIndex("group_type_index", request.group_type_index()).ok()) {
    violations.push_back({"group_type_index", "must be between 0 and 4"});
  }
  if (request.group_key().size() > kMaxGroupFilterBytes) {
    violations.push_back({"group_key", absl::StrCat("at most ", kMaxGroupFilterBytes, " bytes")});
  }
  if (request.search().size() > kMaxGroupFilterBytes) {
    violations.push_back({"search", absl::StrCat("at most ", kMaxGroupFilterBytes, " bytes")});
  }
  if (!violations.empty()) {
    return InvalidArgumentWithViolations("invalid ListGroups request", violations);
  }
  UpstreamUrl query;
  query.Query("group_type_index", request.group_type_index());
  if (!request.group_key().empty()) query.Query("group_key", request.group_key());
  if (!request.search().empty()) query.Query("search", request.search());
  RETURN_IF_ERROR(query.status());
  return query.EncodedQuery();
}

std::string GroupListItemId(const json& item) {
  if (item.is_object() && item.contains("group_key") && item["group_key"].is_string()) {
    return item["group_key"].get<std::string>();
  }
  return item.dump();
}

absl::StatusOr<std::vector<posthog::v1::GroupType>> Groups::ListTypes(
    const CallContext& context) const {
  PostHogRequest request;
  UpstreamUrl url;
  url.Literal("api")
      .Literal("projects")
      .Segment(client_->project().project_id)
      .Literal("groups_types")
      .TrailingSlash();
  ASSIGN_OR_RETURN(request.path, url.Build());
  request.headers = {{"Accept", "application/json"}};
  request.bearer = KeyKind::kPersonalApiKey;
  ASSIGN_OR_RETURN(json body, Call(request, context));
  if (!body.is_array()) {
    return MalformedAnswer("group types", absl::InvalidArgumentError("not a JSON list"));
  }
  std::vector<posthog::v1::GroupType> types;
  for (const json& item : body) {
    absl::StatusOr<posthog::v1::GroupType> type = GroupTypeFromJson(item);
    if (!type.ok()) return MalformedAnswer("a group type", type.status());
    types.push_back(*std::move(type));
  }
  return types;
}

absl::StatusOr<posthog::v1::Group> Groups::Get(int64_t group_type_index,
                                               const std::string& group_key,
                                               const CallContext& context) const {
  RETURN_IF_ERROR(CheckGroup(group_type_index, group_key));
  PostHogRequest request;
  ASSIGN_OR_RETURN(request.path, GroupActionTarget(*client_, "find", group_type_index, group_key));
  request.headers = {{"Accept", "application/json"}};
  request.bearer = KeyKind::kPersonalApiKey;
  ASSIGN_OR_RETURN(json body, Call(request, context));
  absl::StatusOr<posthog::v1::Group> group = GroupFromJson(body);
  if (!group.ok()) return MalformedAnswer("a group", group.status());
  return group;
}

absl::StatusOr<posthog::v1::Group> Groups::Create(int64_t group_type_index,
                                                  const std::string& group_key,
                                                  const google::protobuf::Struct& properties,
                                                  const CallContext& context) const {
  RETURN_IF_ERROR(CheckGroup(group_type_index, group_key));
  PostHogRequest request;
  request.method = "POST";
  ASSIGN_OR_RETURN(request.path, GroupsUrl(*client_).Build());
  request.headers = {{"Content-Type", "application/json"}};
  request.body = json{{"group_type_index", group_type_index},
                      {"group_key", group_key},
                      {"group_properties", JsonFromStruct(properties)}}
                     .dump();
  request.bearer = KeyKind::kPersonalApiKey;
  absl::StatusOr<json> body = Call(request, context);
  if (!body.ok()) {
    // PostHog answers a taken key with a 400 saying so.
    if (body.status().code() == absl::StatusCode::kInvalidArgument &&
        absl::StrContains(body.status().message(), "already exists")) {
      absl::Status exists = absl::AlreadyExistsError(
          absl::StrCat("a group of type ", group_type_index, " already has this key (",
                       body.status().message(), ")"));
      AttachErrorInfo(exists, reasons::kUpstreamAlreadyExists);
      return exists;
    }
    return body.status();
  }
  absl::StatusOr<posthog::v1::Group> group = GroupFromJson(*body);
  if (!group.ok()) return MalformedAnswer("the created group", group.status());
  return group;
}

absl::Status Groups::UpdateProperties(int64_t group_type_index, const std::string& group_key,
                                      const google::protobuf::Struct& set,
                                      const std::vector<std::string>& unset,
                                      const CallContext& context) const {
  RETURN_IF_ERROR(CheckGroup(group_type_index, group_key));
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
        absl::StrCat("UpdateGroupProperties changes ", changes, " properties, more than the ",
                     kMaxPersonPropertyChanges, " one request may change; split the request"),
        violations);
  }
  for (size_t i = 0; i < unset.size(); ++i) {
    if (unset[i].empty()) {
      return InvalidArgumentWithViolations("an unset property has no name",
                                           {{absl::StrCat("unset[", i, "]"), "must not be empty"}});
    }
  }
  ASSIGN_OR_RETURN(const std::string update_path,
                   GroupActionTarget(*client_, "update_property", group_type_index, group_key));
  ASSIGN_OR_RETURN(const std::string delete_path,
                   GroupActionTarget(*client_, "delete_property", group_type_index, group_key));
  return ApplyPropertyUpdates(
      update_path, delete_path, set, unset, context,
      [&](const PostHogRequest& request) { return Call(request, context); });
}

absl::StatusOr<json> Groups::Call(const PostHogRequest& request, const CallContext& context) const {
  if (pacer_ == nullptr) return client_->CallJson(request, context);
  return pacer_->Run(context.deadline, context.is_cancelled,
                     [&] { return client_->CallJson(request, context); });
}

}  // namespace posthog_gateway
