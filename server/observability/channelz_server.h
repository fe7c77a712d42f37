#ifndef SERVER_OBSERVABILITY_CHANNELZ_SERVER_H_
#define SERVER_OBSERVABILITY_CHANNELZ_SERVER_H_

// ChannelzServer serves grpc.channelz.v1.Channelz: gRPC's live view of this
// process's servers, channels and sockets (calls started, succeeded and
// failed, messages and keepalives per connection, the last call's time), as
// read by `grpcdebug`. It listens on a port of its own, bound to 127.0.0.1:
// `kubectl port-forward` reaches it, other pods do not, and the API port
// never serves it.
//
// gRPC enables channelz as a plugin of every server built after it is
// turned on, so Start must come after the gateway's own server is built
// (main does it that way; the test checks the API port does not serve it).

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace posthog_gateway {

class ChannelzServer final {
 public:
  ChannelzServer() = default;
  ~ChannelzServer();
  ChannelzServer(const ChannelzServer&) = delete;
  ChannelzServer& operator=(const ChannelzServer&) = delete;

  // Start listens on 127.0.0.1:port (0 picks a free one) and returns the
  // bound port.
  absl::StatusOr<int> Start(int port);

  // Stop ends the server; calls in flight are cancelled.
  void Stop();

 private:
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace posthog_gateway

#endif  // SERVER_OBSERVABILITY_CHANNELZ_SERVER_H_
