// OfrepServer on loopback: the single and bulk evaluations with the spec's
// shapes, ETag / If-None-Match, and the error answers (404, 400 with the
// context's error code, 400 PARSE_ERROR).

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/config/key_store.h"
#include "server/flags/definitions_store.h"
#include "server/openfeature/ofrep_server.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using test_support::FakeClock;
using test_support::FakeHttpClient;

constexpr char kDefinitions[] = R"({"flags": [
  {"id": 1, "key": "everyone", "active": true, "version": 2,
   "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"true": "{\"a\": 1}"}}},
  {"id": 3, "key": "colors", "active": true, "version": 5,
   "filters": {"groups": [{"rollout_percentage": 100}],
               "multivariate": {"variants": [{"key": "blue", "rollout_percentage": 100}]}}},
  {"id": 8, "key": "off", "active": false, "version": 4,
   "filters": {"groups": [{"rollout_percentage": 100}]}}],
  "group_type_mapping": {}, "cohorts": {}})";

constexpr char kNoFlags[] = R"({"flags": {}, "requestId": "r"})";

class OfrepServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_.Respond(200, kDefinitions);
    config_ = test_support::EnvKeyProjectConfig();
    keys_ = test_support::EnvKeys(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    store_ = std::make_unique<flags::DefinitionsStore>(*registry_->Resolve("demo"), FlagsConfig{});
    store_->PollOnce();
    flags_ = std::make_unique<FlagServiceImpl>(
        registry_.get(), std::map<std::string, FlagProject>{{"demo", {store_.get(), nullptr}}},
        FlagsConfig{}, PagingConfig{}, &tokens_, &clock_);
    OfrepServer::Options options;
    options.threads = 2;
    options.max_body_bytes = 4096;
    server_ = std::make_unique<OfrepServer>(flags_.get(), authorizer_, options);
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  }

  void TearDown() override { server_->Stop(); }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }

  static std::string Body(const json& context) { return json{{"context", context}}.dump(); }

  GatewayConfig config_;
  FakeHttpClient http_;
  FakeClock clock_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<flags::DefinitionsStore> store_;
  std::unique_ptr<FlagServiceImpl> flags_;
  // SetUp's server authorizes with it; a test may replace it first.
  const Authorizer* authorizer_ = Authorizer::AllowAll();
  std::unique_ptr<OfrepServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(OfrepServerTest, OneFlagIsTheSpecsSuccessObject) {
  httplib::Result result =
      Post("/ofrep/v1/evaluate/flags/colors", Body({{"targetingKey", "user-1"}}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(result->body), json({{"key", "colors"},
                                             {"value", "blue"},
                                             {"variant", "blue"},
                                             {"reason", "SPLIT"},
                                             {"metadata",
                                              {{"flagId", 3},
                                               {"flagVersion", 5},
                                               {"posthogReason", "Matched condition set 1"},
                                               {"decidedBy", "gateway"}}}}));

  httplib::Result boolean =
      Post("/ofrep/v1/evaluate/flags/everyone", Body({{"targetingKey", "user-1"}}),
           {{"x-posthog-project", "demo"}});
  ASSERT_TRUE(boolean);
  const json body = json::parse(boolean->body);
  EXPECT_EQ(body["value"], true);
  EXPECT_EQ(body["metadata"]["payload"], R"({"a":1})");
}

TEST_F(OfrepServerTest, ErrorsHaveTheSpecsStatusesAndCodes) {
  http_.Respond(200, kNoFlags);
  httplib::Result missing =
      Post("/ofrep/v1/evaluate/flags/nope", Body({{"targetingKey", "user-1"}}));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["errorCode"], "FLAG_NOT_FOUND");
  EXPECT_EQ(json::parse(missing->body)["key"], "nope");

  httplib::Result no_key = Post("/ofrep/v1/evaluate/flags/colors", Body({{"plan", "pro"}}));
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 400);
  EXPECT_EQ(json::parse(no_key->body)["errorCode"], "TARGETING_KEY_MISSING");

  httplib::Result bad_context =
      Post("/ofrep/v1/evaluate/flags/colors", Body({{"targetingKey", "u"}, {"$groups", 3}}));
  ASSERT_TRUE(bad_context);
  EXPECT_EQ(bad_context->status, 400);
  EXPECT_EQ(json::parse(bad_context->body)["errorCode"], "INVALID_CONTEXT");

  httplib::Result not_json = Post("/ofrep/v1/evaluate/flags/colors", "{context");
  ASSERT_TRUE(not_json);
  EXPECT_EQ(not_json->status, 400);
  EXPECT_EQ(json::parse(not_json->body)["errorCode"], "PARSE_ERROR");

  httplib::Result unknown_project =
      Post("/ofrep/v1/evaluate/flags/colors", Body({{"targetingKey", "u"}}),
           {{"x-posthog-project", "other"}});
  ASSERT_TRUE(unknown_project);
  EXPECT_EQ(unknown_project->status, 400);
  EXPECT_EQ(json::parse(unknown_project->body)["errorCode"], "GENERAL");

  httplib::Result too_big =
      Post("/ofrep/v1/evaluate/flags/colors", Body({{"targetingKey", std::string(8192, 'x')}}));
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
}

TEST_F(OfrepServerTest, BulkHasEveryFlagAndAnEtagThatAnswers304) {
  httplib::Result result = Post("/ofrep/v1/evaluate/flags", Body({{"targetingKey", "user-1"}}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  const json body = json::parse(result->body);
  ASSERT_EQ(body["flags"].size(), 3u);
  EXPECT_EQ(body["flags"][0]["key"], "everyone");
  EXPECT_EQ(body["flags"][0]["value"], true);
  EXPECT_EQ(body["flags"][1]["value"], "blue");
  EXPECT_EQ(body["flags"][2]["value"], false);
  EXPECT_EQ(body["flags"][2]["reason"], "DISABLED");
  const std::string etag = result->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());

  httplib::Result again = Post("/ofrep/v1/evaluate/flags", Body({{"targetingKey", "user-1"}}),
                               {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_EQ(again->body, "");

  // The same answer for another person: the same ETag.
  httplib::Result same = Post("/ofrep/v1/evaluate/flags", Body({{"targetingKey", "user-2"}}),
                              {{"If-None-Match", etag}});
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 304);

  // `off` switched on: another answer.
  json changed = json::parse(kDefinitions);
  changed["flags"][2]["active"] = true;
  http_.Respond(200, changed.dump());
  store_->PollOnce();
  httplib::Result other = Post("/ofrep/v1/evaluate/flags", Body({{"targetingKey", "user-1"}}),
                               {{"If-None-Match", etag}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
  EXPECT_NE(other->get_header_value("ETag"), etag);
  EXPECT_EQ(json::parse(other->body)["flags"][2]["value"], true);

  httplib::Result no_key = Post("/ofrep/v1/evaluate/flags", Body(json::object()));
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 400);
  EXPECT_EQ(json::parse(no_key->body)["errorCode"], "TARGETING_KEY_MISSING");
}

// With authorization on, OFREP's requests need the grant flag_evaluation on
// the project, with the gRPC port's identity sources: 401 without an
// identity, 403 without the grant.
class OfrepServerAuthorizationTest : public OfrepServerTest {
 protected:
  void SetUp() override {
    GatewayConfig config = test_support::EnvKeyProjectConfig();
    config.server.caller_identity = CallerIdentitySource::kIstio;
    config.authorization.callers = {
        {"spiffe://cluster.local/ns/shop/sa/web", {"demo"}, {"flag_evaluation"}, {}},
        {"spiffe://cluster.local/ns/jobs/sa/etl", {"demo"}, {"persons_read"}, {}}};
    absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
        Authorizer::Create(config, nullptr, &clock_);
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    owned_authorizer_ = *std::move(authorizer);
    authorizer_ = owned_authorizer_.get();
    OfrepServerTest::SetUp();
  }

  static httplib::Headers From(const std::string& uri) {
    return {{"x-forwarded-client-cert",
             "By=spiffe://cluster.local/ns/flags/sa/gateway;Hash=ab;URI=" + uri}};
  }

  std::unique_ptr<Authorizer> owned_authorizer_;
};

TEST_F(OfrepServerAuthorizationTest, RequestsNeedFlagEvaluationOnTheProject) {
  const std::string body = Body({{"targetingKey", "user-1"}});
  for (const char* path : {"/ofrep/v1/evaluate/flags/everyone", "/ofrep/v1/evaluate/flags"}) {
    httplib::Result anonymous = Post(path, body);
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401) << path;
    EXPECT_NE(
        json::parse(anonymous->body)["errorDetails"].get<std::string>().find("no caller identity"),
        std::string::npos);

    httplib::Result ungranted = Post(path, body, From("spiffe://cluster.local/ns/jobs/sa/etl"));
    ASSERT_TRUE(ungranted);
    EXPECT_EQ(ungranted->status, 403) << path;
    EXPECT_NE(
        json::parse(ungranted->body)["errorDetails"].get<std::string>().find("flag_evaluation"),
        std::string::npos);

    httplib::Result granted = Post(path, body, From("spiffe://cluster.local/ns/shop/sa/web"));
    ASSERT_TRUE(granted);
    EXPECT_EQ(granted->status, 200) << path << " " << granted->body;
  }
}

}  // namespace
}  // namespace posthog_gateway
