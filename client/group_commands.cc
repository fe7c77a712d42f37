#include "client/group_commands.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "google/protobuf/util/json_util.h"
#include "posthog/v1/group.grpc.pb.h"

namespace posthog_client {
namespace {

namespace v1 = ::posthog::v1;

// ParseType reads a group type index; the gateway checks its range.
absl::StatusOr<int32_t> ParseType(const std::string& arg) {
  int32_t index = 0;
  if (!absl::SimpleAtoi(arg, &index)) {
    return UsageError(absl::StrCat("TYPE is a group type index (0 to 4), not \"", arg, "\""));
  }
  return index;
}

std::optional<std::pair<std::string, std::string>> SplitAssignment(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return std::nullopt;
  return std::make_pair(arg.substr(0, eq), arg.substr(eq + 1));
}

absl::Status Update(const CommandEnv& env, const v1::UpdateGroupPropertiesRequest& request,
                    std::ostream& out) {
  absl::StatusOr<v1::UpdateGroupPropertiesResponse> response =
      env.client->Call(env.client->group_service(),
                       &v1::GroupService::StubInterface::UpdateGroupProperties, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

}  // namespace

absl::Status ListGroupTypesCommand(const CommandEnv& env, const std::vector<std::string>& /*args*/,
                                   std::ostream& out) {
  v1::ListGroupTypesRequest request;
  request.set_project(env.project);
  absl::StatusOr<v1::ListGroupTypesResponse> response = env.client->Call(
      env.client->group_service(), &v1::GroupService::StubInterface::ListGroupTypes, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status ListGroupsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out) {
  absl::StatusOr<int32_t> type = ParseType(args[0]);
  if (!type.ok()) return type.status();
  v1::ListGroupsRequest request;
  request.set_project(env.project);
  request.set_group_type_index(*type);
  for (size_t i = 1; i < args.size(); ++i) {
    const auto kv = SplitAssignment(args[i]);
    int64_t number = 0;
    if (kv.has_value() && kv->first == "group_key") {
      request.set_group_key(kv->second);
    } else if (kv.has_value() && kv->first == "search") {
      request.set_search(kv->second);
    } else if (kv.has_value() && kv->first == "resume") {
      request.set_resume_token(kv->second);
    } else if (kv.has_value() && kv->first == "limit" && absl::SimpleAtoi(kv->second, &number)) {
      request.set_limit(number);
    } else {
      return UsageError(absl::StrCat("unknown groups list argument \"", args[i], "\""));
    }
  }
  std::unique_ptr<grpc::ClientContext> context = env.client->NewContext();
  std::unique_ptr<grpc::ClientReaderInterface<v1::ListGroupsResponse>> reader =
      env.client->group_service().ListGroups(context.get(), request);
  return PrintStream(*reader, out);
}

absl::Status GetGroupCommand(const CommandEnv& env, const std::vector<std::string>& args,
                             std::ostream& out) {
  absl::StatusOr<int32_t> type = ParseType(args[0]);
  if (!type.ok()) return type.status();
  v1::GetGroupRequest request;
  request.set_project(env.project);
  request.set_group_type_index(*type);
  request.set_group_key(args[1]);
  absl::StatusOr<v1::GetGroupResponse> response = env.client->Call(
      env.client->group_service(), &v1::GroupService::StubInterface::GetGroup, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status CreateGroupCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                std::ostream& out) {
  absl::StatusOr<int32_t> type = ParseType(args[0]);
  if (!type.ok()) return type.status();
  v1::CreateGroupRequest request;
  request.set_project(env.project);
  request.set_group_type_index(*type);
  request.set_group_key(args[1]);
  if (args.size() == 3 &&
      !google::protobuf::util::JsonStringToMessage(args[2], request.mutable_group_properties())
           .ok()) {
    return UsageError(absl::StrCat("PROPERTIES_JSON is not a JSON object: ", args[2]));
  }
  absl::StatusOr<v1::CreateGroupResponse> response = env.client->Call(
      env.client->group_service(), &v1::GroupService::StubInterface::CreateGroup, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status SetGroupPropertiesCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                       std::ostream& out) {
  absl::StatusOr<int32_t> type = ParseType(args[0]);
  if (!type.ok()) return type.status();
  v1::UpdateGroupPropertiesRequest request;
  request.set_project(env.project);
  request.set_group_type_index(*type);
  request.set_group_key(args[1]);
  for (size_t i = 2; i < args.size(); ++i) {
    const auto kv = SplitAssignment(args[i]);
    if (!kv.has_value()) {
      return UsageError(absl::StrCat("expected PROP=VALUE, not \"", args[i], "\""));
    }
    google::protobuf::Value value;
    if (!google::protobuf::util::JsonStringToMessage(kv->second, &value).ok()) {
      value.set_string_value(kv->second);
    }
    (*request.mutable_set()->mutable_fields())[kv->first] = value;
  }
  return Update(env, request, out);
}

absl::Status UnsetGroupPropertiesCommand(const CommandEnv& env,
                                         const std::vector<std::string>& args, std::ostream& out) {
  absl::StatusOr<int32_t> type = ParseType(args[0]);
  if (!type.ok()) return type.status();
  v1::UpdateGroupPropertiesRequest request;
  request.set_project(env.project);
  request.set_group_type_index(*type);
  request.set_group_key(args[1]);
  for (size_t i = 2; i < args.size(); ++i) request.add_unset(args[i]);
  return Update(env, request, out);
}

}  // namespace posthog_client
