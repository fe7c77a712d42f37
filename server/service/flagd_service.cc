#include "server/service/flagd_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/common/error_details.h"
#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"
#include "server/posthog/json_struct.h"
#include "server/service/flag_results.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using openfeature::ErrorCode;
using openfeature::Resolution;
using openfeature::ValueType;

// The event types of flagd's EventStream.
constexpr char kProviderReady[] = "provider_ready";
constexpr char kConfigurationChange[] = "configuration_change";
constexpr char kKeepAlive[] = "keep_alive";

grpc::ByteBuffer Serialize(const flagd::evaluation::v2::EventStreamResponse& message) {
  auto* bytes = new std::string(message.SerializeAsString());
  grpc::Slice slice(
      bytes->data(), bytes->size(), [](void* owned) { delete static_cast<std::string*>(owned); },
      bytes);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer Event(const char* type, const json& data = nullptr) {
  flagd::evaluation::v2::EventStreamResponse message;
  message.set_type(type);
  if (data.is_object()) *message.mutable_data() = StructFromJson(data);
  return Serialize(message);
}

// Each flag of a `/flags/definitions` body by key.
absl::flat_hash_map<std::string, const json*> FlagsByKey(const json& raw) {
  absl::flat_hash_map<std::string, const json*> by_key;
  auto flags = raw.find("flags");
  if (flags == raw.end() || !flags->is_array()) return by_key;
  for (const json& flag : *flags) {
    auto key = flag.find("key");
    if (key != flag.end() && key->is_string()) by_key[key->get<std::string>()] = &flag;
  }
  return by_key;
}

// The body without its flags: cohorts, group types, ... that any flag may
// read.
bool SameOutsideFlags(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return a == b;
  for (const auto& [name, value] : a.items()) {
    if (name == "flags") continue;
    auto other = b.find(name);
    if (other == b.end() || *other != value) return false;
  }
  for (const auto& [name, value] : b.items()) {
    if (name != "flags" && !a.contains(name)) return false;
  }
  return true;
}

// flagd's EventStream messages: provider_ready first, configuration_change
// naming the changed flags, keep_alive otherwise.
class EventStreamFormat final : public DefinitionsWatch::Format {
 public:
  grpc::ByteBuffer Opening() const override { return Event(kProviderReady); }

  void Build(DefinitionsWatch::Messages& messages) const override {
    messages.without_definitions = Event(kKeepAlive);
    const flags::CompiledDefinitions* now = messages.snapshot->definitions.get();
    if (now == nullptr) return;
    const absl::flat_hash_map<std::string, const json*> current = FlagsByKey(now->raw());
    json all = json::object();
    for (const auto& [key, flag] : current) all[key] = {{"type", "update"}};
    messages.with_definitions = Event(kConfigurationChange, {{"flags", all}});
    const flags::CompiledDefinitions* before = messages.previous_definitions.get();
    if (before == nullptr || !SameOutsideFlags(before->raw(), now->raw())) {
      messages.with_changes = messages.with_definitions;
      return;
    }
    const absl::flat_hash_map<std::string, const json*> previous = FlagsByKey(before->raw());
    json changed = json::object();
    for (const auto& [key, flag] : current) {
      auto it = previous.find(key);
      if (it == previous.end()) {
        changed[key] = {{"type", "write"}};
      } else if (*it->second != *flag) {
        changed[key] = {{"type", "update"}};
      }
    }
    for (const auto& [key, flag] : previous) {
      if (!current.contains(key)) changed[key] = {{"type", "delete"}};
    }
    messages.with_changes = Event(kConfigurationChange, {{"flags", changed}});
  }
};

// The project a call names in its headers (empty: the default).
std::string ProjectOf(const grpc::CallbackServerContext* context) {
  const auto& headers = context->client_metadata();
  for (const char* name : {FlagdServiceImpl::kProjectHeader, FlagdServiceImpl::kSelectorHeader}) {
    auto it = headers.find(name);
    if (it != headers.end() && it->second.size() > 0) {
      return std::string(it->second.data(), it->second.size());
    }
  }
  return "";
}

// The status flagd's providers turn into `resolution`'s error.
grpc::Status ErrorStatus(const Resolution& resolution) {
  absl::Status status;
  switch (resolution.error) {
    case ErrorCode::kFlagNotFound:
      status = absl::NotFoundError(resolution.error_message);
      break;
    case ErrorCode::kTypeMismatch:
    case ErrorCode::kTargetingKeyMissing:
    case ErrorCode::kInvalidContext:
      status = absl::InvalidArgumentError(resolution.error_message);
      break;
    case ErrorCode::kParseError:
      status = absl::DataLossError(resolution.error_message);
      break;
    default:
      status = absl::InternalError(resolution.error_message);
      break;
  }
  AttachErrorInfo(status, openfeature::ErrorCodeName(resolution.error));
  return ToGrpcStatus(status);
}

}  // namespace

template <typename Request, typename Response>
void FlagdServiceImpl::AddUnary(const char* name,
                                grpc::ServerUnaryReactor* (FlagdServiceImpl::*method)(
                                    grpc::CallbackServerContext*, const Request*, Response*)) {
  AddMethod(
      new grpc::internal::RpcServiceMethod(name, grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodCallback(
      methods_++,
      new grpc::internal::CallbackUnaryHandler<Request, Response>(
          [this, name, method](grpc::CallbackServerContext* context, const Request* request,
                               Response* response) {
            if (grpc::Status denied = authorizer_->Check(*context, name, ProjectOf(context));
                !denied.ok()) {
              grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
              reactor->Finish(denied);
              return reactor;
            }
            return (this->*method)(context, request, response);
          }));
}

FlagdServiceImpl::FlagdServiceImpl(FlagServiceImpl* flags, const ProjectRegistry* projects,
                                   const std::map<std::string, FlagProject>& flag_projects,
                                   absl::Duration keep_alive, const Authorizer* authorizer,
                                   StreamLimits* streams)
    : flags_(flags), projects_(projects), authorizer_(authorizer), streams_(streams) {
  AddUnary("/flagd.evaluation.v2.Service/ResolveAll", &FlagdServiceImpl::ResolveAll);
  AddUnary("/flagd.evaluation.v2.Service/ResolveBoolean", &FlagdServiceImpl::ResolveBoolean);
  AddUnary("/flagd.evaluation.v2.Service/ResolveString", &FlagdServiceImpl::ResolveString);
  AddUnary("/flagd.evaluation.v2.Service/ResolveFloat", &FlagdServiceImpl::ResolveFloat);
  AddUnary("/flagd.evaluation.v2.Service/ResolveInt", &FlagdServiceImpl::ResolveInt);
  AddUnary("/flagd.evaluation.v2.Service/ResolveObject", &FlagdServiceImpl::ResolveObject);
  AddMethod(new grpc::internal::RpcServiceMethod("/flagd.evaluation.v2.Service/EventStream",
                                                 grpc::internal::RpcMethod::SERVER_STREAMING,
                                                 nullptr));
  MarkMethodRawCallback(
      methods_++,
      new grpc::internal::CallbackServerStreamingHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
            return EventStream(context, request);
          }));
  for (const auto& [alias, project] : flag_projects) {
    if (project.definitions != nullptr) {
      watches_[alias] = std::make_unique<DefinitionsWatch>(project.definitions, keep_alive,
                                                           std::make_unique<EventStreamFormat>());
    }
  }
}

FlagdServiceImpl::~FlagdServiceImpl() { Shutdown(); }

void FlagdServiceImpl::Shutdown() {
  for (auto& [alias, watch] : watches_) watch->Shutdown();
}

std::map<std::string, size_t> FlagdServiceImpl::EventStreams() const {
  std::map<std::string, size_t> streams;
  for (const auto& [alias, watch] : watches_) streams[alias] = watch->Streams();
  return streams;
}

template <typename Response, typename SetValue>
grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveOne(
    grpc::CallbackServerContext* context, const std::string* flag_key,
    const google::protobuf::Struct& evaluation_context, ValueType type, Response* response,
    SetValue set_value) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (flag_key->empty()) {
    reactor->Finish(ToGrpcStatus(InvalidArgumentWithViolations(
        "a flag key is required", {{"flag_key", "must not be empty"}})));
    return reactor;
  }
  absl::StatusOr<posthog::v1::EvaluationContext> who =
      openfeature::ContextFromOpenFeature(JsonFromStruct(evaluation_context));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  posthog::v1::EvaluationOptions options;
  options.set_send_flag_called_events(true);
  // The request and the response live until the call finishes.
  flags_->Evaluate(
      [context] { return CallContextFromServer(context); }, ProjectOf(context), {*flag_key}, *who,
      options,
      [reactor, flag_key, type, response, set_value](absl::StatusOr<const FlagResults*> done) {
        if (!done.ok()) {
          reactor->Finish(ToGrpcStatus(done.status()));
          return;
        }
        const FlagResults& results = **done;
        for (size_t i = 0; i < results.size(); ++i) {
          if (results.key(i) != *flag_key) continue;
          Resolution resolution = openfeature::Resolve(results.ToProto(i), type);
          if (resolution.error != ErrorCode::kNone) {
            reactor->Finish(ErrorStatus(resolution));
            return;
          }
          if (!resolution.value.is_null()) set_value(resolution.value, response);
          response->set_reason(resolution.reason);
          if (!resolution.variant.empty()) response->set_variant(resolution.variant);
          *response->mutable_metadata() = StructFromJson(resolution.metadata);
          reactor->Finish(grpc::Status::OK);
          return;
        }
        reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "the flag was not evaluated"));
      });
  return reactor;
}

grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveBoolean(
    grpc::CallbackServerContext* context,
    const flagd::evaluation::v2::ResolveBooleanRequest* request,
    flagd::evaluation::v2::ResolveBooleanResponse* response) {
  return ResolveOne(context, &request->flag_key(), request->context(), ValueType::kBoolean,
                    response,
                    [](const json& value, auto* out) { out->set_value(value.get<bool>()); });
}

grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveString(
    grpc::CallbackServerContext* context,
    const flagd::evaluation::v2::ResolveStringRequest* request,
    flagd::evaluation::v2::ResolveStringResponse* response) {
  return ResolveOne(
      context, &request->flag_key(), request->context(), ValueType::kString, response,
      [](const json& value, auto* out) { out->set_value(value.get_ref<const std::string&>()); });
}

grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveFloat(
    grpc::CallbackServerContext* context, const flagd::evaluation::v2::ResolveFloatRequest* request,
    flagd::evaluation::v2::ResolveFloatResponse* response) {
  return ResolveOne(context, &request->flag_key(), request->context(), ValueType::kFloat, response,
                    [](const json& value, auto* out) { out->set_value(value.get<double>()); });
}

grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveInt(
    grpc::CallbackServerContext* context, const flagd::evaluation::v2::ResolveIntRequest* request,
    flagd::evaluation::v2::ResolveIntResponse* response) {
  return ResolveOne(context, &request->flag_key(), request->context(), ValueType::kInt, response,
                    [](const json& value, auto* out) { out->set_value(value.get<int64_t>()); });
}

grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveObject(
    grpc::CallbackServerContext* context,
    const flagd::evaluation::v2::ResolveObjectRequest* request,
    flagd::evaluation::v2::ResolveObjectResponse* response) {
  return ResolveOne(
      context, &request->flag_key(), request->context(), ValueType::kObject, response,
      [](const json& value, auto* out) { *out->mutable_value() = StructFromJson(value); });
}

grpc::ServerUnaryReactor* FlagdServiceImpl::ResolveAll(
    grpc::CallbackServerContext* context, const flagd::evaluation::v2::ResolveAllRequest* request,
    flagd::evaluation::v2::ResolveAllResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<posthog::v1::EvaluationContext> who =
      openfeature::ContextFromOpenFeature(JsonFromStruct(request->context()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  flags_->Evaluate([context] { return CallContextFromServer(context); }, ProjectOf(context), {},
                   *who, posthog::v1::EvaluationOptions(),
                   [reactor, response](absl::StatusOr<const FlagResults*> done) {
                     if (!done.ok()) {
                       reactor->Finish(ToGrpcStatus(done.status()));
                       return;
                     }
                     const FlagResults& results = **done;
                     auto& flags = *response->mutable_flags();
                     for (size_t i = 0; i < results.size(); ++i) {
                       // Flags that cannot be evaluated are left out, as flagd does.
                       Resolution resolution =
                           openfeature::Resolve(results.ToProto(i), ValueType::kAny);
                       if (resolution.error != ErrorCode::kNone) continue;
                       flagd::evaluation::v2::AnyFlag& flag = flags[results.key(i)];
                       flag.set_reason(resolution.reason);
                       if (!resolution.variant.empty()) flag.set_variant(resolution.variant);
                       if (resolution.value.is_boolean()) {
                         flag.set_bool_value(resolution.value.get<bool>());
                       } else if (resolution.value.is_string()) {
                         flag.set_string_value(resolution.value.get_ref<const std::string&>());
                       }
                       *flag.mutable_metadata() = StructFromJson(resolution.metadata);
                     }
                     reactor->Finish(grpc::Status::OK);
                   });
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* FlagdServiceImpl::EventStream(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* /*request*/) {
  if (grpc::Status denied = authorizer_->Check(
          *context, absl::StrCat("/", kServiceName, "/EventStream"), ProjectOf(context));
      !denied.ok()) {
    return DefinitionsWatch::Refuse(denied);
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(ProjectOf(context));
  if (!client.ok()) return DefinitionsWatch::Refuse(ToGrpcStatus(client.status()));
  auto found = watches_.find((*client)->project().alias);
  if (found == watches_.end()) {
    return DefinitionsWatch::Refuse(ToGrpcStatus(absl::FailedPreconditionError(
        "the gateway does not poll this project's flag definitions (it needs the project API "
        "key and a feature flags secure key or personal API key)")));
  }
  absl::StatusOr<StreamLimits::Slot> slot = streams_->Open(
      authorizer_->CallerName(*context), absl::StrCat("/", kServiceName, "/EventStream"));
  if (!slot.ok()) return DefinitionsWatch::Refuse(ToGrpcStatus(slot.status()));
  return found->second->Open(*std::move(slot));
}

}  // namespace posthog_gateway
