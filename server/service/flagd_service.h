#ifndef SERVER_SERVICE_FLAGD_SERVICE_H_
#define SERVER_SERVICE_FLAGD_SERVICE_H_

// FlagdServiceImpl serves flagd's evaluation protocol, version 2
// (`flagd.evaluation.v2.Service`, proto/flagd/evaluation/v2/
// evaluation.proto) on the gateway's gRPC port, so that OpenFeature's flagd
// providers (RPC resolver) evaluate PostHog's flags through the gateway
// unchanged. docs/openfeature.md is the callers' description.
//
// - ResolveBoolean/String/Int/Float/Object and ResolveAll evaluate through
//   FlagServiceImpl::Evaluate (the same local evaluation, remote fallback,
//   limits and `$feature_flag_called` events as EvaluateFlag(s); single
//   flags send those events, ResolveAll does not) and read the results
//   with openfeature::Resolve.
// - Errors are the gRPC codes flagd's providers turn into OpenFeature's:
//   NOT_FOUND (FLAG_NOT_FOUND), INVALID_ARGUMENT (TYPE_MISMATCH, and a
//   context the gateway cannot use), DATA_LOSS (PARSE_ERROR), INTERNAL
//   (GENERAL; not UNAVAILABLE or UNKNOWN, which providers retry); each with
//   an ErrorInfo whose reason is OpenFeature's error code.
// - EventStream sends `provider_ready` at once, `configuration_change`
//   (data `flags`: an object keyed by the changed flag keys) when the
//   project's definitions change, and `keep_alive` after
//   flags.watch_heartbeat without a message; on a DefinitionsWatch per
//   project (callback reactors, one thread per project). Shutdown (the
//   drain) ends the streams with UNAVAILABLE, so providers reconnect to
//   another replica.
// - Authorization: every call needs the grant flag_evaluation on its project
//   (server/authz/grants.cc), as EvaluateFlags does.
// - The project: the `x-posthog-project` request header, else
//   `flagd-selector` (the providers' `selector` option), each a project
//   alias; else the default project.
//
// grpc_cpp_plugin cannot generate this service (it is named `Service`, and
// its stubs would nest a class `Service` in a class `Service`), so the
// methods are registered here on gRPC's callback API, as generated code
// registers them.
//
// Thread-safe. Borrows the flag service, registry and stores, which must
// outlive it; the gRPC server must be shut down before it is destroyed.

#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "flagd/evaluation/v2/evaluation.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/authz/authorizer.h"
#include "server/grpc/stream_limits.h"
#include "server/openfeature/resolution.h"
#include "server/posthog/project_registry.h"
#include "server/service/definitions_watch.h"
#include "server/service/flag_service.h"

namespace posthog_gateway {

class FlagdServiceImpl final : public grpc::Service {
 public:
  // The service's full name, as gRPC and flagd's providers know it.
  static constexpr char kServiceName[] = "flagd.evaluation.v2.Service";
  // The request headers that name the project.
  static constexpr char kProjectHeader[] = "x-posthog-project";
  static constexpr char kSelectorHeader[] = "flagd-selector";

  // `keep_alive`: EventStream's keep-alive period. Every call is first
  // authorized by `authorizer` (grant flag_evaluation on the call's project).
  FlagdServiceImpl(FlagServiceImpl* flags, const ProjectRegistry* projects,
                   const std::map<std::string, FlagProject>& flag_projects,
                   absl::Duration keep_alive, const Authorizer* authorizer,
                   StreamLimits* streams = StreamLimits::Unlimited());
  ~FlagdServiceImpl() override;

  FlagdServiceImpl(const FlagdServiceImpl&) = delete;
  FlagdServiceImpl& operator=(const FlagdServiceImpl&) = delete;

  // Shutdown ends every EventStream (UNAVAILABLE), now and later. Idempotent.
  void Shutdown();

  // The EventStreams open, by project alias (projects with definitions).
  std::map<std::string, size_t> EventStreams() const;

 private:
  template <typename Request, typename Response>
  void AddUnary(const char* name,
                grpc::ServerUnaryReactor* (FlagdServiceImpl::*method)(grpc::CallbackServerContext*,
                                                                      const Request*, Response*));

  // One flag as `type`; `set_value` stores a resolution's value.
  template <typename Response, typename SetValue>
  grpc::ServerUnaryReactor* ResolveOne(grpc::CallbackServerContext* context,
                                       const std::string* flag_key,
                                       const google::protobuf::Struct& evaluation_context,
                                       openfeature::ValueType type, Response* response,
                                       SetValue set_value);

  grpc::ServerUnaryReactor* ResolveAll(grpc::CallbackServerContext* context,
                                       const flagd::evaluation::v2::ResolveAllRequest* request,
                                       flagd::evaluation::v2::ResolveAllResponse* response);
  grpc::ServerUnaryReactor* ResolveBoolean(
      grpc::CallbackServerContext* context,
      const flagd::evaluation::v2::ResolveBooleanRequest* request,
      flagd::evaluation::v2::ResolveBooleanResponse* response);
  grpc::ServerUnaryReactor* ResolveString(
      grpc::CallbackServerContext* context,
      const flagd::evaluation::v2::ResolveStringRequest* request,
      flagd::evaluation::v2::ResolveStringResponse* response);
  grpc::ServerUnaryReactor* ResolveFloat(grpc::CallbackServerContext* context,
                                         const flagd::evaluation::v2::ResolveFloatRequest* request,
                                         flagd::evaluation::v2::ResolveFloatResponse* response);
  grpc::ServerUnaryReactor* ResolveInt(grpc::CallbackServerContext* context,
                                       const flagd::evaluation::v2::ResolveIntRequest* request,
                                       flagd::evaluation::v2::ResolveIntResponse* response);
  grpc::ServerUnaryReactor* ResolveObject(
      grpc::CallbackServerContext* context,
      const flagd::evaluation::v2::ResolveObjectRequest* request,
      flagd::evaluation::v2::ResolveObjectResponse* response);
  // Raw: the request is an empty message; the messages are the watch's
  // shared bytes.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* EventStream(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request);

  FlagServiceImpl* const flags_;
  const ProjectRegistry* const projects_;
  const Authorizer* const authorizer_;
  // EventStreams open at once (server.max_streams).
  StreamLimits* const streams_;
  int methods_ = 0;
  // The EventStreams of each project that has definitions.
  std::map<std::string, std::unique_ptr<DefinitionsWatch>> watches_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_FLAGD_SERVICE_H_
