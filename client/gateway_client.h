#ifndef CLIENT_GATEWAY_CLIENT_H_
#define CLIENT_GATEWAY_CLIENT_H_

// A small C++ client of the PostHog gRPC gateway over the generated stubs:
// how to reach the gateway (GatewayClientOptions), the channel made from that,
// per-call contexts carrying the deadline and metadata, and GatewayClient,
// which holds one stub per service and runs unary calls returning
// absl::StatusOr.
//
// Example:
//
//   using posthog::v1::UserService;
//   GatewayClientOptions options;
//   options.target = "localhost:50051";
//   options.metadata = {{"x-request-id", "abc"}};
//   absl::StatusOr<std::unique_ptr<GatewayClient>> client =
//       GatewayClient::Create(options);
//   if (!client.ok()) return client.status();
//   absl::StatusOr<posthog::v1::GetCurrentUserResponse> response =
//       (*client)->Call((*client)->user_service(),
//                       &UserService::StubInterface::GetCurrentUser,
//                       posthog::v1::GetCurrentUserRequest());
//   if (!response.ok()) std::cerr << FormatRpcError(response.status());

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/rpc_error.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/group.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"

namespace posthog_client {

// The gateway refuses client pings more frequent than this by default
// (GOAWAY `too_many_pings`; the gateway's `server.min_client_ping_interval`),
// so a shorter keepalive time is rejected by ValidateOptions.
inline constexpr absl::Duration kMinKeepaliveTime = absl::Seconds(10);

// GatewayClientOptions says how to reach the gateway and what every call
// carries. A plain value: copy it freely.
struct GatewayClientOptions {
  // Where the gateway listens, in gRPC name syntax: `host:port`,
  // `dns:///host:port`, `ipv4:127.0.0.1:50051`, `unix:/path`.
  std::string target = "localhost:50051";
  // The deadline of each call, counted from when its context is made.
  // absl::InfiniteDuration() sets no deadline.
  absl::Duration timeout = absl::Seconds(10);
  // TLS on the connection. Plaintext (h2c) by default: inside a mesh the
  // sidecar does mTLS.
  bool use_tls = false;
  // A PEM bundle of CAs to verify the gateway's certificate with; the system
  // roots when empty. Only meaningful with use_tls.
  std::string ca_file;
  // This caller's certificate chain and private key (PEM), for a gateway
  // that requires client certificates (mTLS without a mesh). Both or
  // neither; only meaningful with use_tls.
  std::string cert_file;
  std::string key_file;
  // Metadata sent with every call, e.g. {"x-request-id", "..."}. Keys are
  // lower-case ASCII (`0-9 a-z - _ .`) and never start with `grpc-`; values
  // are printable ASCII unless the key ends in `-bin`.
  std::vector<std::pair<std::string, std::string>> metadata;
  // The largest response message accepted, in bytes; -1 for no limit. gRPC's
  // own default is 4 MiB; the gateway's request limit is 16 MiB.
  int max_receive_message_bytes = 16 * 1024 * 1024;
  // How often an idle connection is pinged to detect dead peers; zero
  // disables keepalive (gRPC's default). At least kMinKeepaliveTime.
  absl::Duration keepalive_time = absl::ZeroDuration();
  // How long to wait for a ping's answer before closing the connection.
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Prepended to gRPC's user agent, e.g. `posthog-cli/0.1.0`.
  std::string user_agent_prefix;
};

// ValidateOptions returns INVALID_ARGUMENT naming the first bad field, e.g.
// `metadata key "X-Id": must be lower-case`.
absl::Status ValidateOptions(const GatewayClientOptions& options);

// MakeChannelArguments validates `options` and returns the channel arguments
// they imply: the receive size limit (GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH),
// keepalive (GRPC_ARG_KEEPALIVE_TIME_MS and _TIMEOUT_MS, only when enabled,
// and never pinging without calls in flight) and the user agent prefix.
absl::StatusOr<grpc::ChannelArguments> MakeChannelArguments(const GatewayClientOptions& options);

// MakeChannelCredentials returns plaintext credentials, or TLS credentials
// trusting `options.ca_file` (read now) or the system roots. Errors: the
// file's read error (e.g. NOT_FOUND), INVALID_ARGUMENT for an empty file or
// a CA file without TLS.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const GatewayClientOptions& options);

// CreateGatewayChannel validates `options` and creates a channel to
// `options.target`. It does no I/O beyond reading the CA file: the channel
// connects on the first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateGatewayChannel(
    const GatewayClientOptions& options);

// MakeClientContext returns a context for one call: deadline `now +
// options.timeout` (none for an infinite timeout) and `options.metadata`.
// `options` must be valid (ValidateOptions). A context serves one call only.
std::unique_ptr<grpc::ClientContext> MakeClientContext(const GatewayClientOptions& options,
                                                       absl::Time now = absl::Now());

// GatewayClient holds one stub per gateway service over a shared channel.
//
// Thread-safe: the channel and stubs may be used from many threads at once;
// every call gets its own context. The client owns its stubs; the stubs
// share ownership of the channel. Not copyable.
class GatewayClient final {
 public:
  // Create validates `options` and creates the channel (see
  // CreateGatewayChannel).
  static absl::StatusOr<std::unique_ptr<GatewayClient>> Create(GatewayClientOptions options);

  // ForChannel makes a client over an existing channel, e.g. an in-process
  // server's; `options` still give the calls' deadline and metadata (their
  // connection settings are not used). Errors as ValidateOptions.
  static absl::StatusOr<std::unique_ptr<GatewayClient>> ForChannel(
      std::shared_ptr<grpc::ChannelInterface> channel, GatewayClientOptions options);

  GatewayClient(const GatewayClient&) = delete;
  GatewayClient& operator=(const GatewayClient&) = delete;

  posthog::v1::UserService::StubInterface& user_service() const { return *user_service_; }
  posthog::v1::CaptureService::StubInterface& capture_service() const { return *capture_service_; }
  posthog::v1::PersonService::StubInterface& person_service() const { return *person_service_; }
  posthog::v1::FlagService::StubInterface& flag_service() const { return *flag_service_; }
  posthog::v1::GroupService::StubInterface& group_service() const { return *group_service_; }
  const GatewayClientOptions& options() const { return options_; }

  // NewContext returns a context for one call made now, per
  // MakeClientContext. Use it for streaming calls.
  std::unique_ptr<grpc::ClientContext> NewContext() const { return MakeClientContext(options_); }

  // Call makes the unary call `rpc` on `stub` with a fresh context and
  // returns the response, or the call's status converted by FromGrpcStatus
  // (rich error details kept). For example
  //   client.Call(client.user_service(),
  //               &posthog::v1::UserService::StubInterface::GetCurrentUser,
  //               request);
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(Stub& stub,
                                grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                          Response*),
                                const Request& request) const {
    std::unique_ptr<grpc::ClientContext> context = NewContext();
    Response response;
    const grpc::Status status = (stub.*rpc)(context.get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

 private:
  GatewayClient(std::shared_ptr<grpc::ChannelInterface> channel, GatewayClientOptions options);

  const GatewayClientOptions options_;
  const std::unique_ptr<posthog::v1::UserService::StubInterface> user_service_;
  const std::unique_ptr<posthog::v1::CaptureService::StubInterface> capture_service_;
  const std::unique_ptr<posthog::v1::PersonService::StubInterface> person_service_;
  const std::unique_ptr<posthog::v1::FlagService::StubInterface> flag_service_;
  const std::unique_ptr<posthog::v1::GroupService::StubInterface> group_service_;
};

}  // namespace posthog_client

#endif  // CLIENT_GATEWAY_CLIENT_H_
