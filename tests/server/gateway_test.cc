// The readiness rules of the whole gateway (server/gateway.h, docs/fleet.md),
// in process: a Gateway with a fake PostHog behind its HTTP client, asked
// through grpc.health.v1.Health on its real port.

#include "server/gateway.h"

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/http/http_client.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kDefinitions[] =
    R"({"flags": [{"id": 1, "key": "beta", "active": true, "version": 2,
                   "filters": {"groups": [{"rollout_percentage": 100}]}}],
        "group_type_mapping": {}, "cohorts": {}})";
constexpr char kFlagService[] = "posthog.v1.FlagService";
constexpr char kFlagServiceDemo[] = "posthog.v1.FlagService/demo";

// PostHog as the gateway sees it: unreachable until SetReachable, then the
// flag definitions and 200 to anything else (capture).
class FakePostHog final : public HttpClient {
 public:
  void SetReachable(bool reachable) { reachable_.store(reachable); }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    if (!reachable_.load()) return absl::UnavailableError("connection refused (fake)");
    HttpResponse response;
    response.status_code = 200;
    response.body =
        absl::StrContains(request.url, "/flags/definitions") ? kDefinitions : R"({"status": 1})";
    return response;
  }

 private:
  std::atomic<bool> reachable_{false};
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_support::ScratchDir("gateway");
    WriteFile("project_api_key", "phc_token");
    WriteFile("personal_api_key", "phx_secret");
    ProjectConfig project;
    project.alias = "demo";
    project.project_id = 7;
    project.ingestion_host = "https://ingest.example";
    project.app_host = "https://app.example";
    project.project_api_key.file = dir_ + "/project_api_key";
    project.personal_api_key.file = dir_ + "/personal_api_key";
    config_.projects.push_back(project);
    config_.default_project = "demo";
    config_.server.port = 0;
    config_.capture.spool_dir = dir_ + "/spool";
    config_.flags.poll_interval = absl::Milliseconds(100);
    config_.key_reload_interval = absl::Milliseconds(100);
    options_.host = "127.0.0.1";
    options_.first_definitions_wait = absl::ZeroDuration();
    options_.drain_delay = absl::Seconds(2);
    options_.shutdown_grace = absl::Seconds(2);
    options_.termination_grace = absl::Seconds(2);
    options_.upstream_http = &posthog_;
  }

  void TearDown() override { gateway_.reset(); }

  void WriteFile(const std::string& name, const std::string& text) {
    // Written and renamed, as the kubelet swaps a Secret's files.
    const std::string path = dir_ + "/" + name;
    std::ofstream(path + ".tmp") << text;
    ASSERT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0);
  }

  void Start() {
    absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Create(config_, options_);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    absl::StatusOr<int> port = gateway_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    health_ = Health::NewStub(Channel());
  }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                               grpc::InsecureChannelCredentials());
  }

  HealthCheckResponse::ServingStatus StatusOf(const std::string& service) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    const grpc::Status status = health_->Check(&context, request, &response);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return response.status();
  }

  // Waits (bounded) until `service` reports `want`, through Health/Watch.
  bool WaitFor(const std::string& service, HealthCheckResponse::ServingStatus want) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    HealthCheckRequest request;
    request.set_service(service);
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch =
        health_->Watch(&context, request);
    HealthCheckResponse response;
    while (watch->Read(&response)) {
      if (response.status() == want) {
        context.TryCancel();
        watch->Finish();
        return true;
      }
    }
    watch->Finish();
    return false;
  }

  std::string dir_;
  GatewayConfig config_;
  GatewayOptions options_;
  FakePostHog posthog_;
  std::unique_ptr<Gateway> gateway_;
  int port_ = 0;
  std::unique_ptr<Health::Stub> health_;
};

TEST_F(GatewayTest, ReadyWithoutPostHogAndFlagServiceServingOnceDefinitionsAreKnown) {
  Start();
  // PostHog unreachable: the pod is ready all the same.
  EXPECT_EQ(StatusOf("liveness"), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(StatusOf("posthog.v1.CaptureService"), HealthCheckResponse::SERVING);
  // But flag evaluation has no definitions yet.
  EXPECT_EQ(StatusOf(kFlagService), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf(kFlagServiceDemo), HealthCheckResponse::NOT_SERVING);

  posthog_.SetReachable(true);
  // Each entry is published on its own: wait for each.
  EXPECT_TRUE(WaitFor(kFlagService, HealthCheckResponse::SERVING));
  EXPECT_TRUE(WaitFor(kFlagServiceDemo, HealthCheckResponse::SERVING));
  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::SERVING);
}

TEST_F(GatewayTest, NotReadyUntilEveryKeyIsLoadedAndReadyOnceARotationBringsIt) {
  std::remove((dir_ + "/project_api_key").c_str());
  posthog_.SetReachable(true);
  Start();
  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf("posthog.v1.CaptureService"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf("liveness"), HealthCheckResponse::SERVING);

  WriteFile("project_api_key", "phc_token");  // The key reload finds it.
  EXPECT_TRUE(WaitFor("readiness", HealthCheckResponse::SERVING));
  EXPECT_TRUE(WaitFor("posthog.v1.CaptureService", HealthCheckResponse::SERVING));
}

TEST_F(GatewayTest, ShutdownReportsNotServingBeforeTheListenerCloses) {
  posthog_.SetReachable(true);
  Start();
  ASSERT_TRUE(WaitFor(kFlagService, HealthCheckResponse::SERVING));

  // A watcher sees every change of readiness while the listener is open.
  grpc::ClientContext watch_context;
  watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  HealthCheckRequest request;
  request.set_service("readiness");
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch =
      health_->Watch(&watch_context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  ASSERT_EQ(update.status(), HealthCheckResponse::SERVING);

  std::thread shutdown([this] { gateway_->Shutdown(); });
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  // Still answering during the drain, and every service's entry follows.
  EXPECT_EQ(StatusOf("readiness"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf(kFlagService), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(StatusOf("liveness"), HealthCheckResponse::SERVING);
  // The drain ends the watch (its caller reconnects elsewhere) and only then
  // does the listener close.
  EXPECT_FALSE(watch->Read(&update));
  watch->Finish();
  health_.reset();
  shutdown.join();

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  HealthCheckResponse response;
  EXPECT_FALSE(Health::NewStub(Channel())->Check(&context, HealthCheckRequest(), &response).ok());
}

TEST(GatewayExitCodeTest, ConfigurationErrorsAreTwoOthersOne) {
  GatewayConfig config;
  ProjectConfig project;
  project.alias = "demo";
  config.projects.push_back(project);
  config.default_project = "demo";
  config.authorization.bearer_tokens_file =
      test_support::ScratchDir("exit") + "/no-such-token-file";
  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Create(config, GatewayOptions());
  ASSERT_FALSE(gateway.ok());
  EXPECT_EQ(ExitCode(gateway.status()), 2);
  EXPECT_EQ(ExitCode(absl::UnavailableError("cannot start")), 1);
}

}  // namespace
}  // namespace posthog_gateway
