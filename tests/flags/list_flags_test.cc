// FlagService.ListFlags through a real (in-process) gRPC server, with
// PostHog's flag list served by the fake list endpoint.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "server/service/stream_list.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_list_endpoint.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::ErrorReason;
using test_support::FakeClock;
using test_support::FakeListEndpoint;
using test_support::ViolatedFields;

constexpr char kBase[] = "https://app.example/api/projects/7/feature_flags/";

class ListFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = test_support::DemoProjectConfig();
    http_ = std::make_unique<FakeListEndpoint>(kBase, 250, &clock_);
    http_->UseDrfPagination();  // As PostHog's flag list pages.
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());
    service_ =
        std::make_unique<FlagServiceImpl>(registry_.get(), std::map<std::string, FlagProject>{},
                                          FlagsConfig{}, PagingConfig{}, &tokens_, &clock_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ = v1::FlagService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override { server_->Shutdown(); }

  // List calls ListFlags and returns the messages and the final status.
  std::pair<std::vector<v1::ListFlagsResponse>, grpc::Status> List(
      const v1::ListFlagsRequest& request) {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::ListFlagsResponse>> reader =
        stub_->ListFlags(&context, request);
    std::vector<v1::ListFlagsResponse> messages;
    v1::ListFlagsResponse message;
    while (reader->Read(&message)) messages.push_back(message);
    return {messages, reader->Finish()};
  }

  static v1::ListFlagsRequest Request(int page_size = 0, int64_t limit = 0,
                                      std::string token = "") {
    v1::ListFlagsRequest request;
    request.set_page_size(page_size);
    request.set_limit(limit);
    request.set_resume_token(std::move(token));
    return request;
  }

  static std::vector<int64_t> Ids(const std::vector<v1::ListFlagsResponse>& messages) {
    std::vector<int64_t> ids;
    for (const v1::ListFlagsResponse& message : messages) {
      for (const v1::Flag& flag : message.flags()) ids.push_back(flag.id());
    }
    return ids;
  }

  static std::vector<int64_t> Range(int64_t from, int64_t to) {
    std::vector<int64_t> ids;
    for (int64_t k = from; k < to; ++k) ids.push_back(k);
    return ids;
  }

  FakeClock clock_;
  ResumeTokenCodec tokens_{"list-flags-test-secret", absl::Hours(24)};
  GatewayConfig config_;
  std::unique_ptr<FakeListEndpoint> http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<FlagServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::FlagService::Stub> stub_;
};

TEST_F(ListFlagsTest, StreamsEveryFlagAcrossPagesWithThePersonalKey) {
  auto [messages, status] = List(Request());
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Ids(messages), Range(0, 250));
  ASSERT_EQ(messages.size(), 3u);  // One message per page.
  EXPECT_EQ(messages[1].progress().page(), 2);
  EXPECT_EQ(messages[1].progress().items_streamed(), 200);
  const std::vector<HttpRequest> requests = http_->requests();
  ASSERT_EQ(requests.size(), 3u);  // PostHog's count stops the look-ahead.
  std::vector<std::string> urls;
  for (const HttpRequest& request : requests) {
    urls.push_back(request.url);
    EXPECT_EQ(request.method, "GET");
    EXPECT_TRUE(
        std::count(request.headers.begin(), request.headers.end(),
                   std::make_pair(std::string("Authorization"), std::string("Bearer phx_secret"))));
  }
  std::sort(urls.begin(), urls.end());
  EXPECT_EQ(urls, (std::vector<std::string>{absl::StrCat(kBase, "?limit=100&offset=0"),
                                            absl::StrCat(kBase, "?limit=100&offset=100"),
                                            absl::StrCat(kBase, "?limit=100&offset=200")}));
}

TEST_F(ListFlagsTest, AResumeTokenContinuesWithoutGapOrDuplicate) {
  auto [first, status] = List(Request(20, 45));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Ids(first), Range(0, 45));
  // A new call with the 45th flag's token, no limit, another page size.
  auto [rest, resumed] = List(Request(100, 0, first.back().resume_token()));
  ASSERT_TRUE(resumed.ok()) << resumed.error_message();
  EXPECT_EQ(Ids(rest), Range(45, 250));
  EXPECT_EQ(rest.front().progress().items_streamed(), 145);  // Flags 45 to 144.
  EXPECT_EQ(rest.back().progress().items_streamed(), 250);
}

TEST_F(ListFlagsTest, LimitCountsAcrossResumedCalls) {
  auto [first, status] = List(Request(10, 25));
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(Ids(first).size(), 25u);
  auto [rest, resumed] = List(Request(10, 30, first.back().resume_token()));
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(Ids(rest), Range(25, 30));
}

TEST_F(ListFlagsTest, AForgedTokenIsInvalidArgument) {
  auto [first, status] = List(Request(10, 1));
  ASSERT_EQ(first.size(), 1u);
  std::string forged = first[0].resume_token();
  forged[5] = forged[5] == 'x' ? 'y' : 'x';
  const size_t requests_before = http_->requests().size();
  auto [messages, refused] = List(Request(10, 0, forged));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(refused), "INVALID_RESUME_TOKEN");
  EXPECT_TRUE(messages.empty());
  EXPECT_EQ(http_->requests().size(), requests_before);
}

TEST_F(ListFlagsTest, APersonsListTokenIsRefused) {
  // The token ListPersons hands out for this project without filters.
  const std::string persons_token =
      tokens_.Encode(ListScope("persons", **registry_->Resolve(""), ""), {10, 10}, clock_.Now());
  auto [messages, status] = List(Request(0, 0, persons_token));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(status), "INVALID_RESUME_TOKEN");
  EXPECT_NE(status.error_message().find("resume_token"), std::string::npos);
  EXPECT_TRUE(messages.empty());
  EXPECT_TRUE(http_->requests().empty());
}

TEST_F(ListFlagsTest, BadBoundsAreInvalidArgumentNamingTheFields) {
  auto [messages, status] = List(Request(1001, -1));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), (std::vector<std::string>{"page_size", "limit"}));
  EXPECT_TRUE(http_->requests().empty());
}

TEST_F(ListFlagsTest, AnUnknownProjectIsInvalidArgument) {
  v1::ListFlagsRequest request = Request();
  request.set_project("nope");
  auto [messages, status] = List(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"project"});
}

}  // namespace
}  // namespace posthog_gateway
