// FlagService's REST calls (GetFlag, CreateFlag, UpdateFlag, DeleteFlag)
// through a real (in-process) gRPC server: they take their turn of the
// project's flag pacer, which they share with ListFlags because PostHog
// throttles all of them under one per-key limit (docs/posthog-api.md §6.4).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/config/key_store.h"
#include "server/paging/resume_token.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::ErrorReason;
using test_support::FakeClock;
using test_support::FakeHttpClient;
using test_support::ViolatedFields;

constexpr char kFlag[] = R"({"id": 12, "key": "beta", "name": "Beta", "active": true,
  "deleted": false, "version": 3, "filters": {"groups": [{"rollout_percentage": 50}]}})";
constexpr char kThrottled[] = R"({"type": "throttled_error", "code": "throttled",
  "detail": "Request was throttled. Expected available in 30 seconds.", "attr": null})";

class FlagManagementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = test_support::DemoProjectConfig();
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    PagingConfig paging;
    paging.flags_per_minute = 2;
    service_ =
        std::make_unique<FlagServiceImpl>(registry_.get(), std::map<std::string, FlagProject>{},
                                          FlagsConfig{}, paging, &tokens_, &clock_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ = v1::FlagService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override { server_->Shutdown(); }

  // Calls with a deadline, so that a turn too far off is refused.
  static void WithDeadline(grpc::ClientContext* context) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  grpc::Status Get() {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::GetFlagRequest request;
    request.set_id(12);
    v1::GetFlagResponse response;
    return stub_->GetFlag(&context, request, &response);
  }

  grpc::Status Update(const std::vector<std::string>& paths) {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::UpdateFlagRequest request;
    request.mutable_flag()->set_id(12);
    request.mutable_flag()->set_name("Renamed");
    request.mutable_flag()->set_key("renamed");
    request.mutable_flag()->set_version(3);
    for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
    v1::UpdateFlagResponse response;
    return stub_->UpdateFlag(&context, request, &response);
  }

  grpc::Status Delete() {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::DeleteFlagRequest request;
    request.set_id(12);
    v1::DeleteFlagResponse response;
    return stub_->DeleteFlag(&context, request, &response);
  }

  GatewayConfig config_;
  FakeHttpClient http_;
  FakeClock clock_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<FlagServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::FlagService::Stub> stub_;
};

TEST_F(FlagManagementTest, CallsOverTheProjectsRateWaitForTheirTurn) {
  http_.Respond(200, kFlag);
  http_.Respond(200, kFlag);
  ASSERT_TRUE(Get().ok());
  ASSERT_TRUE(Get().ok());

  // The third in the minute: its turn is after the deadline.
  http_.Respond(200, kFlag);
  const grpc::Status refused = Get();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ErrorReason(refused), "UPSTREAM_RATE_LIMITED");
  EXPECT_EQ(http_.requests().size(), 2) << "the refused call went to PostHog";

  // A minute later there is room again.
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  EXPECT_TRUE(Get().ok());
  EXPECT_EQ(http_.requests().size(), 3);
}

TEST_F(FlagManagementTest, A429HoldsBackTheProjectsOtherFlagCalls) {
  http_.Respond(429, kThrottled);
  const grpc::Status throttled = Get();
  EXPECT_EQ(throttled.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_EQ(http_.requests().size(), 1);

  // PostHog named 30 s: a write within them is not sent.
  http_.Respond(200, kFlag);
  EXPECT_EQ(Delete().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(http_.requests().size(), 1) << "sent during PostHog's pause";

  clock_.Advance(absl::Seconds(31));
  EXPECT_TRUE(Delete().ok());
  EXPECT_EQ(http_.requests().size(), 2);
}

TEST_F(FlagManagementTest, UpdateSendsOnlyTheFieldsOfItsMask) {
  http_.Respond(200, kFlag);
  ASSERT_TRUE(Update({"name"}).ok());
  ASSERT_EQ(http_.requests().size(), 1);
  EXPECT_EQ(http_.requests()[0].method, "PATCH");
  EXPECT_EQ(nlohmann::json::parse(http_.requests()[0].body),
            nlohmann::json({{"name", "Renamed"}, {"version", 3}}));
}

TEST_F(FlagManagementTest, UpdateRefusesAMaskPathThatIsNoWritableField) {
  const grpc::Status refused = Update({"name", "created_at", "../x"});
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(refused),
            (std::vector<std::string>{"update_mask.paths[1]", "update_mask.paths[2]"}));
  EXPECT_TRUE(http_.requests().empty()) << "a refused update reached PostHog";
}

TEST_F(FlagManagementTest, AHugeRetryAfterHoldsTheProjectBackTenMinutesAtMost) {
  // 999999 s would be 277 hours without a bound.
  http_.Respond(429, kThrottled, {{"Retry-After", "999999"}});
  EXPECT_EQ(Get().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_EQ(http_.requests().size(), 1);

  clock_.Advance(kMaxRetryAfter + absl::Seconds(1));
  http_.Respond(200, kFlag);
  EXPECT_TRUE(Delete().ok());
  EXPECT_EQ(http_.requests().size(), 2);
}

}  // namespace
}  // namespace posthog_gateway
