#include "server/observability/channelz_server.h"

#include <chrono>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/channelz_service_plugin.h"

namespace posthog_gateway {

ChannelzServer::~ChannelzServer() { Stop(); }

absl::StatusOr<int> ChannelzServer::Start(int port) {
  static std::once_flag enabled;
  std::call_once(enabled, [] { grpc::channelz::experimental::InitChannelzService(); });
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // A taken port is an error.
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                           &bound_port);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on 127.0.0.1:", port));
  }
  return bound_port;
}

void ChannelzServer::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
}

}  // namespace posthog_gateway
