#include "server/grpc/gateway_server.h"

#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/user.grpc.pb.h"

namespace posthog_gateway {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class GatewayServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    server_ = std::make_unique<GatewayServer>(
        config,
        std::vector<NamedService>{{posthog::v1::UserService::service_full_name(), &user_service_}});
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    health_ = Health::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration(), absl::ZeroDuration());
  }

  grpc::Status Check(const std::string& service, HealthCheckResponse* response) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    return health_->Check(&context, request, response);
  }

  HealthCheckResponse::ServingStatus StatusOf(const std::string& service) {
    HealthCheckResponse response;
    const grpc::Status status = Check(service, &response);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return response.status();
  }

  posthog::v1::UserService::Service user_service_;  // Answers UNIMPLEMENTED.
  std::unique_ptr<GatewayServer> server_;
  std::unique_ptr<Health::Stub> health_;
};

TEST_F(GatewayServerTest, LivenessServesAtOnceReadinessOnlyWhenReady) {
  EXPECT_EQ(StatusOf("liveness"), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf("posthog.v1.UserService"), HealthCheckResponse::NOT_SERVING);

  server_->SetReady(true);

  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf("posthog.v1.UserService"), HealthCheckResponse::SERVING);
}

TEST_F(GatewayServerTest, AServiceConditionHoldsItsEntryBackButNotReadiness) {
  server_->SetServiceCondition("posthog.v1.UserService", false);
  server_->SetReady(true);

  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf("posthog.v1.UserService"), HealthCheckResponse::NOT_SERVING);

  server_->SetServiceCondition("posthog.v1.UserService", true);
  EXPECT_EQ(StatusOf("posthog.v1.UserService"), HealthCheckResponse::SERVING);

  // Not ready: the entry follows readiness whatever its condition.
  server_->SetReady(false);
  EXPECT_EQ(StatusOf("posthog.v1.UserService"), HealthCheckResponse::NOT_SERVING);
}

TEST_F(GatewayServerTest, UnknownServiceIsNotFound) {
  HealthCheckResponse response;
  EXPECT_EQ(Check("posthog.v1.NoSuchService", &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GatewayServerTest, WatchSeesChangesAndEndsCleanlyWhenTheServerDrains) {
  grpc::ClientContext context;
  HealthCheckRequest request;
  request.set_service("readiness");
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> stream =
      health_->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);

  server_->SetReady(true);
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  // A long grace: a Watch stream still open at its end would be cut with
  // UNAVAILABLE; ours must end by itself, with OK, after NOT_SERVING.
  std::thread shutdown([this] { server_->Shutdown(absl::ZeroDuration(), absl::Seconds(10)); });
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  shutdown.join();
  server_.reset();

  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
}

TEST_F(GatewayServerTest, DrainedRunsAfterReadinessDropsWhileCallsAreStillTaken) {
  server_->SetReady(true);
  HealthCheckResponse::ServingStatus readiness = HealthCheckResponse::UNKNOWN;
  grpc::Status call_while_drained;
  server_->Shutdown(absl::Milliseconds(10), absl::Seconds(10), [&] {
    readiness = StatusOf("readiness");
    HealthCheckResponse response;
    call_while_drained = Check("liveness", &response);
  });
  server_.reset();

  EXPECT_EQ(readiness, HealthCheckResponse::NOT_SERVING);
  EXPECT_TRUE(call_while_drained.ok()) << call_while_drained.error_message();
}

// Threads of this process (the test's client and server both).
int ThreadCount() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++count;
  }
  return count;
}

TEST_F(GatewayServerTest, WatchStreamsDoNotHoldAThreadEach) {
  constexpr int kStreams = 100;
  const int threads_before = ThreadCount();
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<HealthCheckResponse>>> streams;
  HealthCheckRequest request;
  request.set_service("readiness");
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(health_->Watch(contexts.back().get(), request));
    HealthCheckResponse response;
    ASSERT_TRUE(streams.back()->Read(&response));
    EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  }
  // A thread per stream would add kStreams; gRPC's own pools add a few.
  EXPECT_LT(ThreadCount() - threads_before, kStreams / 4);

  server_->SetReady(true);  // Every stream hears of it.
  for (auto& stream : streams) {
    HealthCheckResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }
  for (int i = 0; i < kStreams; ++i) {
    contexts[i]->TryCancel();
    EXPECT_EQ(streams[i]->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
}

}  // namespace
}  // namespace posthog_gateway
