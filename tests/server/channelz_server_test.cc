#include "server/observability/channelz_server.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/notification.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/grpc/gateway_server.h"

namespace posthog_gateway {
namespace {

std::shared_ptr<grpc::Channel> Connect(int port) {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
}

// GetServers calls grpc.channelz.v1.Channelz/GetServers on `port` and
// returns the response as JSON. libgrpcpp_channelz carries its own generated
// channelz messages (linking a second copy aborts), so the call is generic
// and the response is read through that copy's descriptors.
grpc::Status GetServers(int port, nlohmann::json* response) {
  grpc::GenericStub stub(Connect(port));
  grpc::ClientContext context;
  grpc::Slice no_bytes("");  // GetServersRequest with every field unset.
  grpc::ByteBuffer request(&no_bytes, 1);
  grpc::ByteBuffer reply;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.channelz.v1.Channelz/GetServers", grpc::StubOptions(), &request,
                 &reply, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) return status;
  const google::protobuf::Descriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
          "grpc.channelz.v1.GetServersResponse");
  if (descriptor == nullptr) return grpc::Status(grpc::StatusCode::INTERNAL, "no descriptor");
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> message(factory.GetPrototype(descriptor)->New());
  grpc::ProtoBufferReader reader(&reply);
  if (!message->ParseFromZeroCopyStream(&reader)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "unparsable GetServersResponse");
  }
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(*message, &json).ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "cannot print GetServersResponse");
  }
  *response = nlohmann::json::parse(json);
  return grpc::Status::OK;
}

TEST(ChannelzServerTest, ShowsTheGatewayServerOnItsOwnPortOnly) {
  GatewayServer gateway(ServerConfig{}, {});
  absl::StatusOr<int> gateway_port = gateway.Start("127.0.0.1", 0);
  ASSERT_TRUE(gateway_port.ok()) << gateway_port.status();
  ChannelzServer channelz;
  absl::StatusOr<int> channelz_port = channelz.Start(0);
  ASSERT_TRUE(channelz_port.ok()) << channelz_port.status();
  ASSERT_NE(*channelz_port, *gateway_port);

  // One call to the gateway, for channelz to count.
  auto health = grpc::health::v1::Health::NewStub(Connect(*gateway_port));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse health_response;
  ASSERT_TRUE(
      health->Check(&context, grpc::health::v1::HealthCheckRequest(), &health_response).ok());

  // The API port does not serve channelz.
  nlohmann::json response;
  EXPECT_EQ(GetServers(*gateway_port, &response).error_code(), grpc::StatusCode::UNIMPLEMENTED);

  // The channelz port lists both servers, oldest first (a listening socket
  // is named by the address asked for, 127.0.0.1:0, so the ids tell them
  // apart): the gateway's with its two calls counted, the refused one too.
  const grpc::Status status = GetServers(*channelz_port, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const nlohmann::json servers = response.value("server", nlohmann::json::array());
  ASSERT_EQ(servers.size(), 2u) << response.dump();
  const nlohmann::json& data = servers[0].at("data");
  EXPECT_EQ(data.value("callsSucceeded", "0"), "1") << response.dump();
  EXPECT_EQ(data.value("callsFailed", "0"), "1") << response.dump();
  channelz.Stop();
  gateway.Shutdown(absl::ZeroDuration(), absl::ZeroDuration());
}

TEST(ChannelzServerTest, AnOccupiedPortIsAnError) {
  ChannelzServer first;
  absl::StatusOr<int> port = first.Start(0);
  ASSERT_TRUE(port.ok()) << port.status();
  ChannelzServer second;
  EXPECT_EQ(second.Start(*port).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace posthog_gateway
