#include "server/posthog/posthog_client.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "server/posthog/project_registry.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using testing::FakeHttpClient;

constexpr char kPersonalKey[] = "phx_personal_secret_value";

class PostHogClientTest : public ::testing::Test {
 protected:
  PostHogClientTest() {
    const std::filesystem::path dir = std::getenv("TEST_TMPDIR");
    key_path_ = (dir / "personal_api_key").string();
    std::ofstream(key_path_) << kPersonalKey;

    ProjectConfig project;
    project.alias = "demo";
    project.project_id = 7;
    project.ingestion_host = "https://ingest.example";
    project.app_host = "https://app.example";
    project.personal_api_key.file = key_path_;
    config_.projects.push_back(project);
    config_.default_project = "demo";
    config_.upstream.deadline_margin = absl::Milliseconds(50);
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
  }

  const PostHogClient& Client() { return **registry_->Resolve(""); }

  std::string key_path_;
  GatewayConfig config_;
  FakeHttpClient http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
};

TEST_F(PostHogClientTest, SendsThePersonalKeyAsBearerToTheAppHostOnly) {
  http_.Respond(200, R"({"email": "ada@example.com", "team": {"id": 7, "name": "Demo"}})");

  absl::StatusOr<posthog::v1::User> user = Client().GetCurrentUser(CallContext{});

  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->email(), "ada@example.com");
  const std::vector<HttpRequest> requests = http_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const HttpRequest& request = requests[0];
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.url, "https://app.example/api/users/@me/");
  EXPECT_THAT(request.headers,
              Contains(Pair("Authorization", std::string("Bearer ") + kPersonalKey)));
  EXPECT_THAT(request.url, Not(HasSubstr(kPersonalKey)));
  EXPECT_EQ(request.body, "");
}

TEST_F(PostHogClientTest, DeadlineIsTheCallersMinusTheMarginAndTraceHeadersPass) {
  http_.Respond(200, "{}");
  CallContext context;
  context.deadline = absl::Now() + absl::Seconds(2);
  context.trace_headers = {{"traceparent", "00-abc-def-01"}, {"x-request-id", "r-1"}};

  ASSERT_TRUE(Client().GetCurrentUser(context).ok());

  const std::vector<HttpRequest> requests = http_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const HttpRequest& request = requests[0];
  EXPECT_EQ(request.deadline, context.deadline - absl::Milliseconds(50));
  EXPECT_THAT(request.headers, Contains(Pair("traceparent", "00-abc-def-01")));
  EXPECT_THAT(request.headers, Contains(Pair("x-request-id", "r-1")));
}

TEST_F(PostHogClientTest, RefusedKeyIsPermissionDeniedWithoutTheKey) {
  http_.Respond(401, R"({"type":"authentication_error","code":"authentication_failed",
                         "detail":"Personal API key found in request Authorization header is invalid.","attr":null})");

  absl::StatusOr<posthog::v1::User> user = Client().GetCurrentUser(CallContext{});

  EXPECT_EQ(user.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorInfoReason(user.status()), "UPSTREAM_CREDENTIALS_REJECTED");
  EXPECT_THAT(std::string(user.status().message()), HasSubstr("project \"demo\""));
  EXPECT_THAT(std::string(user.status().message()), Not(HasSubstr(kPersonalKey)));
}

TEST_F(PostHogClientTest, TransportErrorsPassThrough) {
  http_.Script(absl::UnavailableError("connection refused"));
  http_.Script(absl::DeadlineExceededError("too slow"));

  EXPECT_EQ(Client().GetCurrentUser(CallContext{}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Client().GetCurrentUser(CallContext{}).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(PostHogClientTest, MalformedBodyIsUnavailable) {
  http_.Respond(200, R"({"email": "trunc)");
  http_.Respond(200, R"({"team": {"id": "not a number"}})");

  absl::StatusOr<posthog::v1::User> truncated = Client().GetCurrentUser(CallContext{});
  absl::StatusOr<posthog::v1::User> mistyped = Client().GetCurrentUser(CallContext{});

  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(truncated.status()), "UPSTREAM_MALFORMED_RESPONSE");
  EXPECT_EQ(mistyped.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(mistyped.status()), "UPSTREAM_MALFORMED_RESPONSE");
}

TEST_F(PostHogClientTest, MissingKeyFailsBeforeAnyRequest) {
  std::filesystem::remove(key_path_);
  KeyStore keys(config_);
  ProjectRegistry registry(config_, &keys, &http_);

  absl::StatusOr<posthog::v1::User> user =
      (*registry.Resolve("demo"))->GetCurrentUser(CallContext{});

  EXPECT_EQ(user.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(PostHogClientTest, RefusesToSendThePersonalKeyToTheIngestionHost) {
  PostHogRequest request;
  request.host = PostHogHost::kIngestion;
  request.path = "/flags/definitions?token=phc_x";
  request.bearer = KeyKind::kPersonalApiKey;

  absl::StatusOr<HttpResponse> response = Client().Send(request, CallContext{});

  EXPECT_EQ(response.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(response.status().message()), Not(HasSubstr("phc_x")));
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(PostHogClientTest, SendGoesToTheIngestionHostWithHeadersAndBody) {
  http_.Respond(200, R"({"status":"Ok"})");
  PostHogRequest request;
  request.method = "POST";
  request.host = PostHogHost::kIngestion;
  request.path = "/batch/";
  request.body = "{}";
  request.headers = {{"Content-Type", "application/json"}};

  absl::StatusOr<nlohmann::json> body = Client().CallJson(request, CallContext{});

  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ((*body)["status"], "Ok");
  const std::vector<HttpRequest> requests = http_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].url, "https://ingest.example/batch/");
  EXPECT_EQ(requests[0].body, "{}");
  EXPECT_THAT(requests[0].headers, Contains(Pair("Content-Type", "application/json")));
  for (const auto& [name, value] : requests[0].headers) EXPECT_NE(name, "Authorization");
}

TEST_F(PostHogClientTest, DescribeDropsTheQuery) {
  PostHogRequest request;
  request.path = "/flags/definitions?token=phc_secret";

  EXPECT_EQ(Client().Describe(request), "GET /flags/definitions for project \"demo\"");
}

TEST_F(PostHogClientTest, UnknownProjectAliasIsInvalidArgumentNamingKnownOnes) {
  absl::StatusOr<const PostHogClient*> client = registry_->Resolve("prod");

  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("known: demo"));
}

}  // namespace
}  // namespace posthog_gateway
