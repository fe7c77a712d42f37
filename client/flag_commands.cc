#include "client/flag_commands.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/gateway_client.h"
#include "client/rpc_error.h"
#include "google/protobuf/util/json_util.h"
#include "posthog/v1/flag.grpc.pb.h"

namespace posthog_client {

using posthog::v1::FlagService;

namespace {

absl::Status ParseJsonArgument(const std::string& text, const char* what,
                               google::protobuf::Message* message) {
  const auto status = google::protobuf::util::JsonStringToMessage(text, message);
  if (!status.ok()) {
    return UsageError(absl::StrCat(what, " is not valid JSON for ", message->GetTypeName(), ": ",
                                   status.ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseId(const std::string& text) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id <= 0) {
    return UsageError(absl::StrCat("ID must be a positive integer, not `", text, "`"));
  }
  return id;
}

}  // namespace

absl::Status EvaluateFlagsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                  std::ostream& out) {
  posthog::v1::EvaluateFlagsRequest request;
  request.set_project(env.project);
  request.mutable_options()->set_geoip(env.geoip);
  if (!args[0].empty() && args[0][0] == '{') {
    absl::Status parsed = ParseJsonArgument(args[0], "CONTEXT", request.mutable_context());
    if (!parsed.ok()) return parsed;
  } else {
    request.mutable_context()->set_distinct_id(args[0]);
  }
  for (size_t i = 1; i < args.size(); ++i) request.add_keys(args[i]);
  auto response = env.client->Call(env.client->flag_service(),
                                   &FlagService::StubInterface::EvaluateFlags, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status ListFlagsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                              std::ostream& out) {
  posthog::v1::ListFlagsRequest request;
  request.set_project(env.project);
  for (const std::string& arg : args) {
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    int64_t number = 0;
    const bool numeric = eq != std::string::npos && absl::SimpleAtoi(value, &number);
    if (name == "resume" && eq != std::string::npos) {
      request.set_resume_token(value);
    } else if (name == "page_size" && numeric && number >= INT32_MIN && number <= INT32_MAX) {
      request.set_page_size(static_cast<int32_t>(number));
    } else if (name == "limit" && numeric) {
      request.set_limit(number);
    } else {
      return UsageError(absl::StrCat("unknown flags list argument \"", arg,
                                     "\" (expected page_size=N, limit=N or resume=TOKEN)"));
    }
  }
  std::unique_ptr<grpc::ClientContext> context = env.client->NewContext();
  auto reader = env.client->flag_service().ListFlags(context.get(), request);
  return PrintStream(*reader, out);
}

absl::Status ListLocalFlagsCommand(const CommandEnv& env, const std::vector<std::string>& /*args*/,
                                   std::ostream& out) {
  posthog::v1::WatchFlagDefinitionsRequest request;
  request.set_project(env.project);
  std::unique_ptr<grpc::ClientContext> context = env.client->NewContext();
  auto reader = env.client->flag_service().WatchFlagDefinitions(context.get(), request);
  posthog::v1::WatchFlagDefinitionsResponse message;
  // The first message with definitions is the current state; heartbeats
  // before the first load carry none.
  while (reader->Read(&message)) {
    if (message.has_definitions()) {
      context->TryCancel();
      reader->Finish();
      return PrintJson(message, out);
    }
  }
  return FromGrpcStatus(reader->Finish());
}

absl::Status GetFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                            std::ostream& out) {
  absl::StatusOr<int64_t> id = ParseId(args[0]);
  if (!id.ok()) return id.status();
  posthog::v1::GetFlagRequest request;
  request.set_project(env.project);
  request.set_id(*id);
  auto response =
      env.client->Call(env.client->flag_service(), &FlagService::StubInterface::GetFlag, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status CreateFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out) {
  posthog::v1::CreateFlagRequest request;
  request.set_project(env.project);
  absl::Status parsed = ParseJsonArgument(args[0], "FLAG_JSON", request.mutable_flag());
  if (!parsed.ok()) return parsed;
  auto response = env.client->Call(env.client->flag_service(),
                                   &FlagService::StubInterface::CreateFlag, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status UpdateFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out) {
  posthog::v1::UpdateFlagRequest request;
  request.set_project(env.project);
  absl::Status parsed = ParseJsonArgument(args[0], "FLAG_JSON", request.mutable_flag());
  if (!parsed.ok()) return parsed;
  for (size_t i = 1; i < args.size(); ++i) request.mutable_update_mask()->add_paths(args[i]);
  auto response = env.client->Call(env.client->flag_service(),
                                   &FlagService::StubInterface::UpdateFlag, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status DeleteFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out) {
  absl::StatusOr<int64_t> id = ParseId(args[0]);
  if (!id.ok()) return id.status();
  posthog::v1::DeleteFlagRequest request;
  request.set_project(env.project);
  request.set_id(*id);
  auto response = env.client->Call(env.client->flag_service(),
                                   &FlagService::StubInterface::DeleteFlag, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

}  // namespace posthog_client
