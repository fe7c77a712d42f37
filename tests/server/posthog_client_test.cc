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
#include "server/users/users.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

using test_support::FakeHttpClient;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

constexpr char kPersonalKey[] = "phx_personal_secret_value";

class PostHogClientTest : public ::testing::Test {
 protected:
  PostHogClientTest() {
    const std::filesystem::path dir = ::testing::TempDir();
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

  absl::StatusOr<posthog::v1::User> user = GetCurrentUser(Client(), CallContext{});

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

  ASSERT_TRUE(GetCurrentUser(Client(), context).ok());

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

  absl::StatusOr<posthog::v1::User> user = GetCurrentUser(Client(), CallContext{});

  EXPECT_EQ(user.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorInfoReason(user.status()), "UPSTREAM_CREDENTIALS_REJECTED");
  EXPECT_THAT(std::string(user.status().message()), HasSubstr("project \"demo\""));
  EXPECT_THAT(std::string(user.status().message()), Not(HasSubstr(kPersonalKey)));
}

TEST_F(PostHogClientTest, TransportErrorsPassThrough) {
  http_.Script(absl::UnavailableError("connection refused"));
  http_.Script(absl::DeadlineExceededError("too slow"));

  EXPECT_EQ(GetCurrentUser(Client(), CallContext{}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetCurrentUser(Client(), CallContext{}).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(PostHogClientTest, MalformedBodyIsUnavailable) {
  http_.Respond(200, R"({"email": "trunc)");
  http_.Respond(200, R"({"team": {"id": "not a number"}})");

  absl::StatusOr<posthog::v1::User> truncated = GetCurrentUser(Client(), CallContext{});
  absl::StatusOr<posthog::v1::User> mistyped = GetCurrentUser(Client(), CallContext{});

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
      GetCurrentUser(**registry.Resolve("demo"), CallContext{});

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

TEST_F(PostHogClientTest, UnknownProjectAliasIsInvalidArgumentCountingButNotNamingKnownOnes) {
  absl::StatusOr<const PostHogClient*> client = registry_->Resolve("prod");

  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.status().message(),
            "no project \"prod\" is configured in the gateway (1 project is configured)");
  EXPECT_THAT(std::string(client.status().message()), Not(HasSubstr("demo")));
  // The ErrorInfo the client library documents (client/rpc_error.h).
  EXPECT_EQ(ErrorInfoReason(client.status()), "UNKNOWN_PROJECT");
  // A long or unprintable value is not echoed.
  EXPECT_EQ(registry_->Resolve(std::string(65, 'p')).status().message(),
            "no such project is configured in the gateway (1 project is configured)");
  EXPECT_EQ(registry_->Resolve("a\nb").status().message(),
            "no such project is configured in the gateway (1 project is configured)");
}

// The refusal count of `reason` on `client`.
int64_t Refused(const PostHogClient& client, const std::string& reason) {
  for (const auto& [name, count] : client.RefusedRequests()) {
    if (name == reason) return count;
  }
  return -1;
}

TEST_F(PostHogClientTest, RefusesThePersonalKeyOffItsAllowList) {
  // Each of these carries the personal key somewhere no RPC needs: a project
  // itself, another project, a route PostHog has but the gateway does not
  // use, a person route with what is not a person id.
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"DELETE", "/api/projects/7/"},
      {"GET", "/api/projects/7/"},
      {"DELETE", "/api/projects/7/?delete_events=true"},
      {"POST", "/api/projects/7/delete_property/"},
      {"GET", "/api/projects/8/persons/"},
      {"GET", "/api/projects/@current/persons/"},
      {"POST", "/api/projects/7/persons/bulk_delete/"},
      {"DELETE", "/api/projects/7/feature_flags/12/"},
      {"PATCH", "/api/projects/7/persons/01908d6b-0001-7000-8000-000000000001/"},
      {"GET", "/api/projects/7/persons/0/"},
      {"GET", "/api/projects/7/persons/abc/"},
      {"GET", "/api/projects/7/persons/%2E%2E%2F/"},
      {"GET", "/api/projects/7/feature_flags/beta/"},
      {"GET", "/api/organizations/"},
      {"GET", "/api/users/@me"},
      {"GET", "/batch/"},
  };
  int64_t count = 0;
  for (const auto& [method, path] : refused) {
    PostHogRequest request;
    request.method = method;
    request.path = path;
    request.bearer = KeyKind::kPersonalApiKey;

    absl::StatusOr<HttpResponse> response = Client().Send(request, CallContext{});

    EXPECT_EQ(response.status().code(), absl::StatusCode::kInternal) << method << " " << path;
    EXPECT_EQ(ErrorInfoReason(response.status()), "UPSTREAM_REQUEST_REFUSED") << path;
    EXPECT_THAT(std::string(response.status().message()), Not(HasSubstr(kPersonalKey)));
    EXPECT_EQ(Refused(Client(), "personal_key_route_not_allowed"), ++count) << path;
  }
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(PostHogClientTest, SendsThePersonalKeyToEveryRouteOfItsAllowList) {
  const std::vector<std::pair<std::string, std::string>> allowed = {
      {"GET", "/api/users/@me/"},
      {"GET", "/api/projects/7/persons/?distinct_id=a%2F..&limit=1"},
      {"GET", "/api/projects/7/persons/01908d6b-0001-7000-8000-000000000001/"},
      {"GET", "/api/projects/7/persons/9223372036854775807/"},
      {"DELETE",
       "/api/projects/7/persons/01908D6B-0001-7000-8000-000000000001/?delete_events=true"},
      {"POST", "/api/projects/7/persons/42/update_property/"},
      {"POST", "/api/projects/7/persons/42/delete_property/"},
      {"GET", "/api/projects/7/feature_flags/?limit=100&offset=0"},
      {"POST", "/api/projects/7/feature_flags/"},
      {"GET", "/api/projects/7/feature_flags/12/"},
      {"PATCH", "/api/projects/7/feature_flags/12/"},
      {"GET", "/flags/definitions?token=phc_x&send_cohorts"},
  };
  for (const auto& [method, path] : allowed) {
    http_.Respond(200, "{}");
    PostHogRequest request;
    request.method = method;
    request.path = path;
    request.bearer = KeyKind::kPersonalApiKey;
    absl::StatusOr<HttpResponse> response = Client().Send(request, CallContext{});
    EXPECT_TRUE(response.ok()) << method << " " << path << ": " << response.status();
  }
  EXPECT_EQ(http_.requests().size(), allowed.size());
  EXPECT_EQ(Refused(Client(), "personal_key_route_not_allowed"), 0);
}

TEST_F(PostHogClientTest, RefusesATargetNotBuiltByUpstreamUrl) {
  // Whatever the key, a target with raw or dot segments never leaves.
  for (const std::string& path :
       {std::string("/api/projects/7/persons/../"), std::string("/api/projects/7/persons/./"),
        std::string("/api/projects/7/persons/%2e%2e/"), std::string("/api/projects/7/persons/%2E/"),
        std::string("/batch/?a=b c"), std::string("/batch/#x"), std::string("batch/"),
        std::string("/api//projects/"), std::string("/flags/?v=2\r\nHost: evil"),
        std::string("/api/x\0/", 8), std::string("/flags/?")}) {
    PostHogRequest request;
    request.method = "POST";
    request.host = PostHogHost::kIngestion;
    request.path = path;

    absl::StatusOr<HttpResponse> response = Client().Send(request, CallContext{});

    EXPECT_EQ(response.status().code(), absl::StatusCode::kInternal) << path;
    EXPECT_EQ(ErrorInfoReason(response.status()), "UPSTREAM_REQUEST_REFUSED") << path;
  }
  EXPECT_EQ(Refused(Client(), "target_not_canonical"), 11);
  EXPECT_TRUE(http_.requests().empty());
}

}  // namespace
}  // namespace posthog_gateway
