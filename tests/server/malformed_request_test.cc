// Every posthog.v1 method that takes one request message, served by the real
// services behind a GatewayServer on loopback, answers a request whose bytes
// are not a valid protobuf message with INVALID_ARGUMENT (never INTERNAL or
// UNIMPLEMENTED), and the server keeps serving.

#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/capture/capture_pipeline.h"
#include "server/common/clock.h"
#include "server/config/key_store.h"
#include "server/grpc/gateway_server.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/capture_service.h"
#include "server/service/flag_service.h"
#include "server/service/person_service.h"
#include "server/service/user_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/raw_grpc_call.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;

// Bytes no message of the API parses from.
const std::vector<std::pair<std::string, std::string>>& MalformedPayloads() {
  static const auto* payloads = new std::vector<std::pair<std::string, std::string>>{
      {"an invalid tag", std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)},
      {"a truncated varint", std::string("\x08\xff", 2)},
      {"a truncated length-delimited field", std::string("\x0a\x05"
                                                         "ab",
                                                         4)},
      {"a string field that is not UTF-8", std::string("\x0a\x02\xff\xfe", 4)},
      {"a group end without start", std::string("\x0c", 1)},
  };
  return *payloads;
}

class MalformedRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = test_support::DemoProjectConfig();
    config_.capture.spool_dir = ::testing::TempDir() + "spool";
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    absl::StatusOr<std::unique_ptr<CapturePipeline>> pipeline =
        CapturePipeline::Create(config_, registry_.get(), keys_.get(), "test");
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = *std::move(pipeline);
    capture_ = std::make_unique<CaptureServiceImpl>(pipeline_.get());
    persons_ =
        std::make_unique<PersonServiceImpl>(registry_.get(), PagingConfig{}, &tokens_, RealClock());
    flags_ = std::make_unique<FlagServiceImpl>(
        registry_.get(), std::map<std::string, FlagProject>{{"demo", FlagProject{}}}, FlagsConfig{},
        PagingConfig{}, &tokens_, RealClock());
    users_ = std::make_unique<UserServiceImpl>(registry_.get());
    server_ = std::make_unique<GatewayServer>(
        ServerConfig{},
        std::vector<NamedService>{
            // Raw methods named as the gateway names them, so
            // that their handlers answer alone.
            {v1::CaptureService::service_full_name(),
             capture_.get(),
             {std::begin(CaptureServiceImpl::kRawMethods),
              std::end(CaptureServiceImpl::kRawMethods)}},
            {v1::PersonService::service_full_name(), persons_.get()},
            {v1::FlagService::service_full_name(),
             flags_.get(),
             {std::begin(FlagServiceImpl::kRawMethods), std::end(FlagServiceImpl::kRawMethods)}},
            {v1::UserService::service_full_name(), users_.get()}});
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration(), absl::ZeroDuration());
    if (flags_ != nullptr) flags_->Shutdown();
  }

  GatewayConfig config_;
  test_support::FakeHttpClient http_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<CapturePipeline> pipeline_;
  std::unique_ptr<CaptureServiceImpl> capture_;
  std::unique_ptr<PersonServiceImpl> persons_;
  std::unique_ptr<FlagServiceImpl> flags_;
  std::unique_ptr<UserServiceImpl> users_;
  std::unique_ptr<GatewayServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(MalformedRequestTest, EveryMethodAnswersInvalidArgument) {
  // Every method with one request message: sync, callback and raw handlers,
  // unary and server-streaming. (StreamCaptureEvents reads a stream of
  // messages; its own test covers a bad one mid-stream.)
  const std::vector<std::string> methods = {
      "/posthog.v1.CaptureService/CaptureEvent",
      "/posthog.v1.CaptureService/BatchCaptureEvents",
      "/posthog.v1.CaptureService/Identify",
      "/posthog.v1.CaptureService/Alias",
      "/posthog.v1.CaptureService/GroupIdentify",
      "/posthog.v1.CaptureService/SetPersonProperties",
      "/posthog.v1.FlagService/EvaluateFlag",
      "/posthog.v1.FlagService/EvaluateFlags",
      "/posthog.v1.FlagService/WatchFlagDefinitions",
      "/posthog.v1.FlagService/ListFlags",
      "/posthog.v1.FlagService/GetFlag",
      "/posthog.v1.FlagService/CreateFlag",
      "/posthog.v1.FlagService/UpdateFlag",
      "/posthog.v1.FlagService/DeleteFlag",
      "/posthog.v1.PersonService/ListPersons",
      "/posthog.v1.PersonService/GetPerson",
      "/posthog.v1.PersonService/DeletePerson",
      "/posthog.v1.PersonService/UpdatePersonProperties",
      "/posthog.v1.UserService/GetCurrentUser",
  };
  for (const std::string& method : methods) {
    for (const auto& [what, bytes] : MalformedPayloads()) {
      const grpc::Status status = test_support::RawUnaryCall(channel_, method, bytes);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << method << " with " << what << ": " << status.error_code() << " "
          << status.error_message();
    }
  }
  EXPECT_TRUE(http_.requests().empty());
  // Still serving: a well-formed call gets its ordinary answer.
  EXPECT_EQ(
      test_support::RawUnaryCall(channel_, "/posthog.v1.FlagService/GetFlag", "").error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);  // id 0: "a flag id is required".
}

}  // namespace
}  // namespace posthog_gateway
