// The transport bound of the EvaluateFlags benchmark: a gRPC server that
// does everything the gateway does for a 50-flag call except deciding the
// flags. It serves
//   - posthog.v1.FlagService/EvaluateFlags, raw on gRPC's callback API as the
//     gateway serves it: it parses the request onto an arena, then answers
//     with the same pre-encoded reply every time (the gateway's own 50
//     results, saved by `grpc_load --method=save_reply`);
//   - grpc.health.v1.Health/Check, the gateway's HealthService: the no-op;
// over the gateway's transport: the server options of a gateway with the
// default `server` configuration (max connection age, which adds a filter to
// every call, keepalive enforcement, receive size), set by the gateway's own
// ApplyServerOptions (--gateway_transport=false leaves gRPC's defaults).
// What EvaluateFlags reaches here against Check is the most any evaluator
// could reach on this machine with this reply, whatever it cost: the rest is
// gRPC's and the kernel's handling of the reply and the caller's parse of it.
//
//   reply_bound_server --reply=/tmp/flagbench/reply.bin --port_file=/tmp/port
//     [--gateway_transport=false]

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/config/config.h"
#include "server/grpc/arena_message_allocator.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/health_service.h"

ABSL_FLAG(std::string, reply, "", "a file holding the EvaluateFlagsResponse to answer with");
ABSL_FLAG(std::string, port_file, "", "where to write the port chosen on 127.0.0.1");
ABSL_FLAG(bool, gateway_transport, true,
          "serve with the server options of a gateway with the default server configuration "
          "(false: gRPC's defaults)");

namespace {

using posthog::v1::FlagService;

class BoundFlagService final
    : public FlagService::WithRawCallbackMethod_EvaluateFlags<FlagService::Service> {
 public:
  explicit BoundFlagService(std::string reply) : reply_(std::move(reply)) {}

  grpc::ServerUnaryReactor* EvaluateFlags(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request_bytes,
                                          grpc::ByteBuffer* response_bytes) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    posthog_gateway::ArenaMessage<posthog::v1::EvaluateFlagsRequest> request;
    if (!request.ParseFrom(*request_bytes)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a request"));
      return reactor;
    }
    // Not even a copy: the reply's bytes outlive the server.
    grpc::Slice slice(reply_.data(), reply_.size(), grpc::Slice::STATIC_SLICE);
    *response_bytes = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const std::string reply_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As the gateway's main does: Debian's Abseil leaves absl::Mutex's
  // deadlock detection on, which would cost this server (and only it) a
  // process-wide lock graph update on every lock gRPC takes.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::ifstream file(absl::GetFlag(FLAGS_reply), std::ios::binary);
  std::string reply((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  posthog::v1::EvaluateFlagsResponse check;
  if (reply.empty() || !check.ParseFromString(reply)) {
    std::fprintf(stderr, "--reply must name a file holding an EvaluateFlagsResponse\n");
    return 2;
  }
  BoundFlagService flags(std::move(reply));
  posthog_gateway::HealthService health;
  health.SetServing("", true);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  if (absl::GetFlag(FLAGS_gateway_transport)) {
    posthog_gateway::ApplyServerOptions(posthog_gateway::ServerConfig(), &builder);
  }
  builder.RegisterService(&flags);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1\n");
    return 1;
  }
  // Written whole, then renamed: whoever waits for the file reads a port.
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  std::ofstream(port_file + ".tmp") << port << "\n";
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  server->Wait();  // Until killed.
  return 0;
}
