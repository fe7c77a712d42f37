#include "client/commands.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/capture_commands.h"
#include "client/flag_commands.h"
#include "client/group_commands.h"
#include "google/protobuf/util/json_util.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"

namespace posthog_client {

absl::Span<const Command> Commands() {
  // Later commands (`capture event`, `persons list`, `flags evaluate`, ...)
  // are one row each.
  static const auto* const kCommands = new std::vector<Command>{
      {"user get", "", 0, 0, "The PostHog user who owns the gateway's personal API key.",
       &GetUserCommand},
      {"flags evaluate", "CONTEXT [KEY...]", 1, -1,
       "Evaluate flags (all, or the KEYs); CONTEXT is a distinct id or a JSON "
       "EvaluationContext.",
       &EvaluateFlagsCommand},
      {"flags list-local", "", 0, 0, "The flag definitions the gateway holds.",
       &ListLocalFlagsCommand},
      {"flags list", "[page_size=|limit=|resume=]...", 0, -1,
       "Stream the project's flags from PostHog, newest first, one JSON object per line, each "
       "with its resume token.",
       &ListFlagsCommand},
      {"flags get", "ID", 1, 1, "One flag by id.", &GetFlagCommand},
      {"flags create", "FLAG_JSON", 1, 1, "Create a flag (a posthog.v1.Flag as JSON).",
       &CreateFlagCommand},
      {"flags update", "FLAG_JSON [FIELD...]", 1, -1,
       "Update a flag (with its id; `version` for optimistic concurrency), only FIELDs if given.",
       &UpdateFlagCommand},
      {"flags delete", "ID", 1, 1, "Delete a flag (PostHog's soft delete).", &DeleteFlagCommand},
      {"persons list", "[distinct_id=|email=|search=|cohort=|page_size=|limit=|resume=]...", 0, -1,
       "Stream matching persons, one JSON object per line, each with its resume token.",
       &ListPersonsCommand},
      {"persons get", "uuid=U|id=N|distinct_id=D", 1, 1, "One person.", &GetPersonCommand},
      {"persons delete", "uuid=U|id=N|distinct_id=D [delete_events]", 1, 2,
       "Delete a person (and with delete_events their events).", &DeletePersonCommand},
      {"persons set", "uuid=U|id=N|distinct_id=D KEY=VALUE...", 2, -1,
       "Set person properties (VALUE is JSON, else a string).", &SetPersonPropertiesCommand},
      {"persons unset", "uuid=U|id=N|distinct_id=D KEY...", 2, -1, "Remove person properties.",
       &UnsetPersonPropertiesCommand},
      {"groups types", "", 0, 0, "The project's group types and their indexes.",
       &ListGroupTypesCommand},
      {"groups list", "TYPE [group_key=|search=|limit=|resume=]...", 1, -1,
       "Stream the groups of type index TYPE (0-4), newest first, one JSON object per line, "
       "each with its resume token.",
       &ListGroupsCommand},
      {"groups get", "TYPE KEY", 2, 2, "One group.", &GetGroupCommand},
      {"groups create", "TYPE KEY [PROPERTIES_JSON]", 2, 3, "Create a group.", &CreateGroupCommand},
      {"groups set", "TYPE KEY PROP=VALUE...", 3, -1,
       "Set group properties (VALUE is JSON, else a string).", &SetGroupPropertiesCommand},
      {"groups unset", "TYPE KEY PROP...", 3, -1, "Remove group properties.",
       &UnsetGroupPropertiesCommand},
      {"capture event", "EVENT DISTINCT_ID [PROPERTIES_JSON]", 2, 3,
       "Capture one event (acknowledged once on the gateway's disk).", &CaptureEventCommand},
      {"capture identify", "DISTINCT_ID [SET_JSON [ANONYMOUS_ID]]", 1, 3,
       "Send $identify: set person properties, link an anonymous id.", &IdentifyCommand},
      {"capture alias", "DISTINCT_ID ALIAS", 2, 2,
       "Send $create_alias: merge two distinct ids into one person.", &AliasCommand},
      {"capture group", "GROUP_TYPE GROUP_KEY [PROPERTIES_JSON]", 2, 3,
       "Send $groupidentify: create or update a group.", &GroupIdentifyCommand},
      {"capture set", "DISTINCT_ID SET_JSON", 2, 2, "Send $set: set person properties.",
       &CaptureSetCommand},
  };
  return *kCommands;
}

absl::Status PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the response as JSON: ", status.ToString()));
  }
  // add_whitespace output already ends with a newline.
  out << json;
  if (json.empty() || json.back() != '\n') out << "\n";
  return absl::OkStatus();
}

absl::Status PrintJsonLine(const google::protobuf::Message& message, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print a ", message.GetDescriptor()->name(), " as JSON"));
  }
  out << json << "\n";
  return absl::OkStatus();
}

absl::Status GetUserCommand(const CommandEnv& env, const std::vector<std::string>& /*args*/,
                            std::ostream& out) {
  posthog::v1::GetCurrentUserRequest request;
  request.set_project(env.project);
  absl::StatusOr<posthog::v1::GetCurrentUserResponse> response =
      env.client->Call(env.client->user_service(),
                       &posthog::v1::UserService::StubInterface::GetCurrentUser, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

namespace {

// SplitAssignment splits "key=value"; nullopt without '='.
std::optional<std::pair<std::string, std::string>> SplitAssignment(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return std::nullopt;
  return std::make_pair(arg.substr(0, eq), arg.substr(eq + 1));
}

absl::StatusOr<posthog::v1::PersonRef> ParsePersonRef(const std::string& arg) {
  const auto kv = SplitAssignment(arg);
  posthog::v1::PersonRef ref;
  if (kv.has_value() && kv->first == "uuid") {
    ref.set_uuid(kv->second);
  } else if (kv.has_value() && kv->first == "distinct_id") {
    ref.set_distinct_id(kv->second);
  } else if (int64_t id = 0;
             kv.has_value() && kv->first == "id" && absl::SimpleAtoi(kv->second, &id)) {
    ref.set_id(id);
  } else {
    return UsageError(
        absl::StrCat("name the person as uuid=U, id=N or distinct_id=D, not \"", arg, "\""));
  }
  return ref;
}

}  // namespace

absl::Status ListPersonsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                std::ostream& out) {
  posthog::v1::ListPersonsRequest request;
  request.set_project(env.project);
  for (const std::string& arg : args) {
    const auto kv = SplitAssignment(arg);
    int64_t number = 0;
    const bool numeric = kv.has_value() && absl::SimpleAtoi(kv->second, &number);
    if (kv.has_value() && kv->first == "distinct_id") {
      request.set_distinct_id(kv->second);
    } else if (kv.has_value() && kv->first == "email") {
      request.set_email(kv->second);
    } else if (kv.has_value() && kv->first == "search") {
      request.set_search(kv->second);
    } else if (kv.has_value() && kv->first == "resume") {
      request.set_resume_token(kv->second);
    } else if (numeric && kv->first == "cohort") {
      request.set_cohort_id(number);
    } else if (numeric && kv->first == "page_size") {
      request.set_page_size(static_cast<int32_t>(number));
    } else if (numeric && kv->first == "limit") {
      request.set_limit(number);
    } else {
      return UsageError(absl::StrCat("unknown persons list argument \"", arg, "\""));
    }
  }
  std::unique_ptr<grpc::ClientContext> context = env.client->NewContext();
  std::unique_ptr<grpc::ClientReaderInterface<posthog::v1::ListPersonsResponse>> reader =
      env.client->person_service().ListPersons(context.get(), request);
  return PrintStream(*reader, out);
}

absl::Status GetPersonCommand(const CommandEnv& env, const std::vector<std::string>& args,
                              std::ostream& out) {
  absl::StatusOr<posthog::v1::PersonRef> ref = ParsePersonRef(args[0]);
  if (!ref.ok()) return ref.status();
  posthog::v1::GetPersonRequest request;
  request.set_project(env.project);
  *request.mutable_person() = *ref;
  absl::StatusOr<posthog::v1::GetPersonResponse> response = env.client->Call(
      env.client->person_service(), &posthog::v1::PersonService::StubInterface::GetPerson, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status DeletePersonCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                 std::ostream& out) {
  absl::StatusOr<posthog::v1::PersonRef> ref = ParsePersonRef(args[0]);
  if (!ref.ok()) return ref.status();
  posthog::v1::DeletePersonRequest request;
  request.set_project(env.project);
  *request.mutable_person() = *ref;
  if (args.size() == 2) {
    if (args[1] != "delete_events") {
      return UsageError(absl::StrCat("expected delete_events, not \"", args[1], "\""));
    }
    request.set_delete_events(true);
  }
  absl::StatusOr<posthog::v1::DeletePersonResponse> response =
      env.client->Call(env.client->person_service(),
                       &posthog::v1::PersonService::StubInterface::DeletePerson, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status SetPersonPropertiesCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                        std::ostream& out) {
  absl::StatusOr<posthog::v1::PersonRef> ref = ParsePersonRef(args[0]);
  if (!ref.ok()) return ref.status();
  posthog::v1::UpdatePersonPropertiesRequest request;
  request.set_project(env.project);
  *request.mutable_person() = *ref;
  for (size_t i = 1; i < args.size(); ++i) {
    const auto kv = SplitAssignment(args[i]);
    if (!kv.has_value())
      return UsageError(absl::StrCat("expected KEY=VALUE, not \"", args[i], "\""));
    google::protobuf::Value value;
    if (!google::protobuf::util::JsonStringToMessage(kv->second, &value).ok()) {
      value.set_string_value(kv->second);
    }
    (*request.mutable_set()->mutable_fields())[kv->first] = value;
  }
  absl::StatusOr<posthog::v1::UpdatePersonPropertiesResponse> response =
      env.client->Call(env.client->person_service(),
                       &posthog::v1::PersonService::StubInterface::UpdatePersonProperties, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status UnsetPersonPropertiesCommand(const CommandEnv& env,
                                          const std::vector<std::string>& args, std::ostream& out) {
  absl::StatusOr<posthog::v1::PersonRef> ref = ParsePersonRef(args[0]);
  if (!ref.ok()) return ref.status();
  posthog::v1::UpdatePersonPropertiesRequest request;
  request.set_project(env.project);
  *request.mutable_person() = *ref;
  for (size_t i = 1; i < args.size(); ++i) request.add_unset(args[i]);
  absl::StatusOr<posthog::v1::UpdatePersonPropertiesResponse> response =
      env.client->Call(env.client->person_service(),
                       &posthog::v1::PersonService::StubInterface::UpdatePersonProperties, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

}  // namespace posthog_client
