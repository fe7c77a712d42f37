#include "client/commands.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/flag_commands.h"
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
      {"flags evaluate", "CONTEXT [KEY...]", 1, -1,
       "Evaluate flags (all, or the KEYs); CONTEXT is a distinct id or a JSON "
       "EvaluationContext.",
       &EvaluateFlagsCommand},
      {"flags list-local", "", 0, 0, "The flag definitions the gateway holds.",
       &ListLocalFlagsCommand},
      {"flags get", "ID", 1, 1, "One flag by id.", &GetFlagCommand},
      {"flags create", "FLAG_JSON", 1, 1, "Create a flag (a posthog.v1.Flag as JSON).",
       &CreateFlagCommand},
      {"flags update", "FLAG_JSON [FIELD...]", 1, -1,
       "Update a flag (with its id; `version` for optimistic concurrency), only FIELDs if given.",
       &UpdateFlagCommand},
      {"flags delete", "ID", 1, 1, "Delete a flag (PostHog's soft delete).",
       &DeleteFlagCommand},
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
