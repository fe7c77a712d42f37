#include "client/commands.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/capture_commands.h"
#include "google/protobuf/util/json_util.h"
#include "posthog/v1/user.grpc.pb.h"

namespace posthog_client {

absl::Span<const Command> Commands() {
  // Later commands (`capture event`, `persons list`, `flags evaluate`, ...)
  // are one row each.
  static const auto* const kCommands = new std::vector<Command>{
      {"user get", "", 0, 0,
       "The PostHog user who owns the gateway's personal API key.",
       &GetUserCommand},
      {"capture event", "EVENT DISTINCT_ID [PROPERTIES_JSON]", 2, 3,
       "Capture one event (acknowledged once on the gateway's disk).",
       &CaptureEventCommand},
      {"capture identify", "DISTINCT_ID [SET_JSON [ANONYMOUS_ID]]", 1, 3,
       "Send $identify: set person properties, link an anonymous id.",
       &IdentifyCommand},
      {"capture alias", "DISTINCT_ID ALIAS", 2, 2,
       "Send $create_alias: merge two distinct ids into one person.", &AliasCommand},
      {"capture group", "GROUP_TYPE GROUP_KEY [PROPERTIES_JSON]", 2, 3,
       "Send $groupidentify: create or update a group.", &GroupIdentifyCommand},
      {"capture set", "DISTINCT_ID SET_JSON", 2, 2,
       "Send $set: set person properties.", &SetPersonPropertiesCommand},
  };
  return *kCommands;
}

absl::Status PrintJson(const google::protobuf::Message& message,
                       std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the response as JSON: ", status.ToString()));
  }
  // add_whitespace output already ends with a newline.
  out << json;
  if (json.empty() || json.back() != '\n') out << "\n";
  return absl::OkStatus();
}

absl::Status GetUserCommand(const CommandEnv& env,
                            const std::vector<std::string>& /*args*/,
                            std::ostream& out) {
  posthog::v1::GetCurrentUserRequest request;
  request.set_project(env.project);
  absl::StatusOr<posthog::v1::GetCurrentUserResponse> response =
      env.client->Call(env.client->user_service(),
                       &posthog::v1::UserService::StubInterface::GetCurrentUser,
                       request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

}  // namespace posthog_client
