#include "client/capture_commands.h"

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "posthog/v1/capture.grpc.pb.h"

namespace posthog_client {
namespace {

using posthog::v1::CaptureService;

// ParseObject reads a JSON object argument named `what`.
absl::StatusOr<google::protobuf::Struct> ParseObject(const std::string& text,
                                                     absl::string_view what) {
  google::protobuf::Struct value;
  if (!google::protobuf::util::JsonStringToMessage(text, &value).ok()) {
    return UsageError(absl::StrCat(what, " must be a JSON object, e.g. '{\"plan\": \"pro\"}'"));
  }
  return value;
}

}  // namespace

absl::Status CaptureEventCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                 std::ostream& out) {
  posthog::v1::CaptureEventRequest request;
  request.set_project(env.project);
  request.mutable_event()->set_geoip(env.geoip);
  request.mutable_event()->set_event(args[0]);
  request.mutable_event()->set_distinct_id(args[1]);
  if (args.size() > 2) {
    absl::StatusOr<google::protobuf::Struct> properties = ParseObject(args[2], "PROPERTIES_JSON");
    if (!properties.ok()) return properties.status();
    *request.mutable_event()->mutable_properties() = *properties;
  }
  auto response = env.client->Call(env.client->capture_service(),
                                   &CaptureService::StubInterface::CaptureEvent, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status IdentifyCommand(const CommandEnv& env, const std::vector<std::string>& args,
                             std::ostream& out) {
  posthog::v1::IdentifyRequest request;
  request.set_project(env.project);
  request.set_geoip(env.geoip);
  request.set_distinct_id(args[0]);
  if (args.size() > 1) {
    absl::StatusOr<google::protobuf::Struct> set = ParseObject(args[1], "SET_JSON");
    if (!set.ok()) return set.status();
    *request.mutable_set() = *set;
  }
  if (args.size() > 2) request.set_anonymous_distinct_id(args[2]);
  auto response = env.client->Call(env.client->capture_service(),
                                   &CaptureService::StubInterface::Identify, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status AliasCommand(const CommandEnv& env, const std::vector<std::string>& args,
                          std::ostream& out) {
  posthog::v1::AliasRequest request;
  request.set_project(env.project);
  request.set_geoip(env.geoip);
  request.set_distinct_id(args[0]);
  request.set_alias(args[1]);
  auto response = env.client->Call(env.client->capture_service(),
                                   &CaptureService::StubInterface::Alias, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status GroupIdentifyCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                  std::ostream& out) {
  posthog::v1::GroupIdentifyRequest request;
  request.set_project(env.project);
  request.set_geoip(env.geoip);
  request.set_group_type(args[0]);
  request.set_group_key(args[1]);
  if (args.size() > 2) {
    absl::StatusOr<google::protobuf::Struct> properties = ParseObject(args[2], "PROPERTIES_JSON");
    if (!properties.ok()) return properties.status();
    *request.mutable_properties() = *properties;
  }
  auto response = env.client->Call(env.client->capture_service(),
                                   &CaptureService::StubInterface::GroupIdentify, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

absl::Status CaptureSetCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out) {
  posthog::v1::SetPersonPropertiesRequest request;
  request.set_project(env.project);
  request.set_geoip(env.geoip);
  request.set_distinct_id(args[0]);
  absl::StatusOr<google::protobuf::Struct> set = ParseObject(args[1], "SET_JSON");
  if (!set.ok()) return set.status();
  *request.mutable_set() = *set;
  auto response = env.client->Call(env.client->capture_service(),
                                   &CaptureService::StubInterface::SetPersonProperties, request);
  if (!response.ok()) return response.status();
  return PrintJson(*response, out);
}

}  // namespace posthog_client
