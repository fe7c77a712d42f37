// ACK_MODE_DELIVERED waits through the real CaptureService behind a
// GatewayServer on loopback, with a PostHog that holds every batch
// (issue 13, "Threads"): each wait holds a thread, so they are capped by
// capture.max_delivered_waits (RESOURCE_EXHAUSTED past it, nothing stored),
// and a caller that cancels gets its thread back at once, not at its
// deadline.

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "server/capture/capture_pipeline.h"
#include "server/config/key_store.h"
#include "server/grpc/gateway_server.h"
#include "server/http/http_client.h"
#include "server/posthog/project_registry.h"
#include "server/service/capture_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::ErrorReason;

// A PostHog whose capture endpoint answers nothing until Release (or the
// request is abandoned).
class HeldCapture final : public HttpClient {
 public:
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    while (!released_) {
      if (request.is_cancelled && request.is_cancelled()) {
        return absl::CancelledError("abandoned");
      }
      if (absl::Now() >= request.deadline) return absl::DeadlineExceededError("deadline");
      mu_.AwaitWithTimeout(absl::Condition(&released_), absl::Milliseconds(10));
    }
    HttpResponse response;
    response.status_code = 200;
    response.body = R"({"status": 1})";
    return response;
  }

  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }

 private:
  absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

class DeliveredWaitsTest : public ::testing::Test {
 protected:
  static constexpr int64_t kMaxWaits = 2;

  void SetUp() override {
    config_ = test_support::DemoProjectConfig();
    config_.projects[0].project_api_key.env = "PHC";
    // A spool of each test's own: one left by another test would be
    // replayed into this one's counts.
    config_.capture.spool_dir = ::testing::TempDir() + "spool-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name();
    keys_ = std::make_unique<KeyStore>(config_, [](const std::string& name) {
      return std::optional<std::string>(name == "PHC" ? "phc_token" : "phx_secret");
    });
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    absl::StatusOr<std::unique_ptr<CapturePipeline>> pipeline =
        CapturePipeline::Create(config_, registry_.get(), keys_.get(), "test");
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = *std::move(pipeline);
    capture_ = std::make_unique<CaptureServiceImpl>(pipeline_.get(), Authorizer::AllowAll(),
                                                    StreamLimits::Unlimited(), kMaxWaits);
    server_ = std::make_unique<GatewayServer>(
        ServerConfig{},
        std::vector<NamedService>{{v1::CaptureService::service_full_name(), capture_.get()}});
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = v1::CaptureService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    for (auto& call : calls_) call->context.TryCancel();
    for (auto& call : batches_) call->context.TryCancel();
    for (auto& call : calls_) call->done.WaitForNotification();
    for (auto& call : batches_) call->done.WaitForNotification();
    http_.Release();
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration(), absl::Seconds(5));
  }

  struct Call {
    grpc::ClientContext context;
    v1::CaptureEventRequest request;
    v1::CaptureEventResponse response;
    grpc::Status status;
    absl::Notification done;
  };

  // Start sends a DELIVERED CaptureEvent with a minute's deadline.
  Call* Start() {
    calls_.push_back(std::make_unique<Call>());
    Call* call = calls_.back().get();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
    call->request.set_ack_mode(v1::ACK_MODE_DELIVERED);
    call->request.mutable_event()->set_event("order completed");
    call->request.mutable_event()->set_distinct_id(absl::StrCat("user-", calls_.size()));
    stub_->async()->CaptureEvent(&call->context, &call->request, &call->response,
                                 [call](grpc::Status status) {
                                   call->status = std::move(status);
                                   call->done.Notify();
                                 });
    return call;
  }

  struct BatchCall {
    grpc::ClientContext context;
    v1::BatchCaptureEventsRequest request;
    v1::BatchCaptureEventsResponse response;
    grpc::Status status;
    absl::Notification done;
  };

  // StartBatch sends a DELIVERED BatchCaptureEvents of two events with a
  // minute's deadline.
  BatchCall* StartBatch() {
    batches_.push_back(std::make_unique<BatchCall>());
    BatchCall* call = batches_.back().get();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
    call->request.set_ack_mode(v1::ACK_MODE_DELIVERED);
    for (int i = 0; i < 2; ++i) {
      v1::Event* event = call->request.add_events();
      event->set_event("order completed");
      event->set_distinct_id(absl::StrCat("batch-user-", batches_.size(), "-", i));
    }
    stub_->async()->BatchCaptureEvents(&call->context, &call->request, &call->response,
                                       [call](grpc::Status status) {
                                         call->status = std::move(status);
                                         call->done.Notify();
                                       });
    return call;
  }

  // WaitsReach polls until `n` calls wait for PostHog (at most 10 s).
  bool WaitsReach(int64_t n) {
    for (int i = 0; i < 1000 && capture_->delivered_waits() != n; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return capture_->delivered_waits() == n;
  }

  GatewayConfig config_;
  HeldCapture http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<CapturePipeline> pipeline_;
  std::unique_ptr<CaptureServiceImpl> capture_;
  std::unique_ptr<GatewayServer> server_;
  std::unique_ptr<v1::CaptureService::Stub> stub_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<BatchCall>> batches_;
};

TEST_F(DeliveredWaitsTest, WaitsPastTheCapAreResourceExhaustedAndStoreNothing) {
  for (int i = 0; i < kMaxWaits; ++i) Start();
  ASSERT_TRUE(WaitsReach(kMaxWaits));
  // Both events are spooled (a wait starts before its event is written).
  for (int i = 0; i < 1000 && pipeline_->undelivered() != kMaxWaits; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(pipeline_->undelivered(), kMaxWaits);
  Call* refused = Start();
  ASSERT_TRUE(refused->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(refused->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused->status.error_message();
  EXPECT_EQ(ErrorReason(refused->status), "DELIVERED_WAITS_EXHAUSTED");
  EXPECT_EQ(pipeline_->undelivered(), kMaxWaits);
  EXPECT_EQ(capture_->delivered_waits(), kMaxWaits);
}

// BatchCaptureEvents waits on a thread of its own as CaptureEvent does, and
// under the same cap.
TEST_F(DeliveredWaitsTest, BatchCallsWaitUnderTheSameCap) {
  BatchCall* batch = StartBatch();
  ASSERT_TRUE(WaitsReach(1));
  Start();
  ASSERT_TRUE(WaitsReach(kMaxWaits));
  for (int i = 0; i < 1000 && pipeline_->undelivered() != 3; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(pipeline_->undelivered(), 3);
  BatchCall* refused = StartBatch();
  ASSERT_TRUE(refused->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(refused->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused->status.error_message();
  EXPECT_EQ(ErrorReason(refused->status), "DELIVERED_WAITS_EXHAUSTED");
  EXPECT_EQ(pipeline_->undelivered(), 3);
  // Released, the batch answers both uuids.
  http_.Release();
  ASSERT_TRUE(batch->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(batch->status.ok()) << batch->status.error_message();
  EXPECT_EQ(batch->response.uuids_size(), 2);
}

TEST_F(DeliveredWaitsTest, ACallerWhoCancelsGetsItsWaitReleasedBeforeTheDeadline) {
  Call* call = Start();
  ASSERT_TRUE(WaitsReach(1));
  call->context.TryCancel();
  // The deadline is a minute away: only the cancellation can end the wait.
  EXPECT_TRUE(WaitsReach(0)) << capture_->delivered_waits() << " waits left";
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(call->status.error_code(), grpc::StatusCode::CANCELLED);
  // Its place is free again.
  for (int i = 0; i < kMaxWaits; ++i) Start();
  EXPECT_TRUE(WaitsReach(kMaxWaits));
}

}  // namespace
}  // namespace posthog_gateway
