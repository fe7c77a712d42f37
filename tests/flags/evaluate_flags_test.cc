// FlagService.EvaluateFlag(s) through a real (in-process) gRPC server: the
// callback handlers, the raw EvaluateFlags reply written by FlagResults, and
// the PostHog fallback that finishes on a thread of its own.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/config/key_store.h"
#include "server/flags/definitions_store.h"
#include "server/http/http_client.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::FakeClock;
using test_support::FakeHttpClient;
using test_support::ViolatedFields;

// Three flags the definitions decide, and one that needs a property the
// caller does not send (so PostHog decides it).
constexpr char kDefinitions[] = R"({"flags": [
  {"id": 1, "key": "everyone", "active": true, "version": 2,
   "filters": {"groups": [{"rollout_percentage": 100}]}},
  {"id": 2, "key": "nobody", "active": true, "version": 1,
   "filters": {"groups": [{"rollout_percentage": 0}]}},
  {"id": 3, "key": "colors", "active": true, "version": 5,
   "filters": {"groups": [{"rollout_percentage": 100}],
               "multivariate": {"variants": [{"key": "blue", "rollout_percentage": 100}]},
               "payloads": {"blue": "{\"hex\": \"#00f\"}"}}},
  {"id": 4, "key": "pro-only", "active": true, "version": 1,
   "filters": {"groups": [{"properties": [{"key": "plan", "type": "person",
                                           "operator": "exact", "value": ["pro"]}],
                           "rollout_percentage": 100}]}}],
  "group_type_mapping": {}, "cohorts": {}})";

constexpr char kPostHogAnswer[] = R"({"flags": {"pro-only": {"key": "pro-only",
  "enabled": true, "variant": null,
  "reason": {"code": "condition_match", "condition_index": 0,
             "description": "Matched condition set 1"},
  "metadata": {"id": 4, "version": 1}}}, "requestId": "posthog-request"})";

class EvaluateFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_.Respond(200, kDefinitions);
    Start(&http_, FlagsConfig{});
  }

  // Start serves FlagService over `http` (which must answer the first
  // definitions poll) with `options`.
  void Start(HttpClient* http, const FlagsConfig& options, bool disable_geoip = true) {
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
    service_.reset();
    store_.reset();
    config_ = test_support::EnvKeyProjectConfig();
    config_.projects[0].disable_geoip = disable_geoip;
    keys_ = test_support::EnvKeys(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http);
    store_ = std::make_unique<flags::DefinitionsStore>(*registry_->Resolve("demo"), options);
    store_->PollOnce();
    service_ = std::make_unique<FlagServiceImpl>(
        registry_.get(), std::map<std::string, FlagProject>{{"demo", {store_.get(), nullptr}}},
        options, PagingConfig{}, &tokens_, &clock_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
    stub_ = v1::FlagService::NewStub(channel_);
  }

  void TearDown() override { server_->Shutdown(); }

  static v1::EvaluateFlagsRequest Request(std::vector<std::string> keys, bool only_local) {
    v1::EvaluateFlagsRequest request;
    for (std::string& key : keys) request.add_keys(std::move(key));
    request.mutable_context()->set_distinct_id("user-1");
    request.mutable_options()->set_only_local(only_local);
    return request;
  }

  grpc::Status Evaluate(const v1::EvaluateFlagsRequest& request,
                        v1::EvaluateFlagsResponse* response) {
    grpc::ClientContext context;
    return stub_->EvaluateFlags(&context, request, response);
  }

  GatewayConfig config_;
  FakeHttpClient http_;
  FakeClock clock_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<flags::DefinitionsStore> store_;
  std::unique_ptr<FlagServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlagService::Stub> stub_;
};

TEST_F(EvaluateFlagsTest, EveryFlagLocallyMatchesEvaluateFlagPerKey) {
  v1::EvaluateFlagsResponse all;
  ASSERT_TRUE(Evaluate(Request({}, /*only_local=*/true), &all).ok());
  ASSERT_EQ(all.results_size(), 4);
  EXPECT_FALSE(all.request_id().empty());

  const v1::FlagResult& colors = all.results().at("colors");
  EXPECT_TRUE(colors.enabled());
  EXPECT_EQ(colors.variant(), "blue");
  EXPECT_EQ(colors.payload().struct_value().fields().at("hex").string_value(), "#00f");
  EXPECT_EQ(colors.source(), v1::FLAG_DECISION_SOURCE_LOCAL);
  EXPECT_EQ(colors.flag_version(), 5);
  EXPECT_FALSE(all.results().at("nobody").enabled());
  EXPECT_EQ(all.results().at("pro-only").error_code(), v1::FLAG_ERROR_CODE_GENERAL);

  for (const auto& [key, result] : all.results()) {
    v1::EvaluateFlagRequest one;
    one.set_key(key);
    *one.mutable_context() = Request({}, true).context();
    one.mutable_options()->set_only_local(true);
    grpc::ClientContext context;
    v1::EvaluateFlagResponse single;
    ASSERT_TRUE(stub_->EvaluateFlag(&context, one, &single).ok());
    EXPECT_EQ(single.result().SerializeAsString(), result.SerializeAsString()) << key;
  }
}

TEST_F(EvaluateFlagsTest, KeysAskedTwiceAnswerOnceAndUnknownKeysSaySo) {
  v1::EvaluateFlagsResponse response;
  ASSERT_TRUE(Evaluate(Request({"everyone", "everyone", "missing"}, true), &response).ok());
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_TRUE(response.results().at("everyone").enabled());
  EXPECT_EQ(response.results().at("missing").error_code(), v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND);
}

TEST_F(EvaluateFlagsTest, AnUndecidedFlagIsAskedOfPostHogOnce) {
  http_.Respond(200, kPostHogAnswer);
  v1::EvaluateFlagsResponse response;
  ASSERT_TRUE(Evaluate(Request({}, /*only_local=*/false), &response).ok());
  ASSERT_EQ(response.results_size(), 4);
  const v1::FlagResult& remote = response.results().at("pro-only");
  EXPECT_TRUE(remote.enabled());
  EXPECT_EQ(remote.source(), v1::FLAG_DECISION_SOURCE_REMOTE);
  EXPECT_EQ(response.results().at("everyone").source(), v1::FLAG_DECISION_SOURCE_LOCAL);
  EXPECT_EQ(response.request_id(), "posthog-request");
  // The definitions, then one /flags call.
  ASSERT_EQ(http_.requests().size(), 2u);
  EXPECT_NE(http_.requests()[1].url.find("/flags"), std::string::npos);
}

// The local evaluation reads the person's properties from the request one
// key at a time; PostHog is still sent all of them.
TEST_F(EvaluateFlagsTest, PostHogIsSentEveryPersonPropertyTheCallGave) {
  http_.Respond(200, kPostHogAnswer);
  v1::EvaluateFlagsRequest request = Request({}, /*only_local=*/false);
  auto& fields = *request.mutable_context()->mutable_person_properties()->mutable_fields();
  fields["email"].set_string_value("ada@example.com");
  fields["age"].set_number_value(30);
  fields["beta"].set_bool_value(true);
  fields["tags"].mutable_list_value()->add_values()->set_string_value("x");
  v1::EvaluateFlagsResponse response;
  ASSERT_TRUE(Evaluate(request, &response).ok());
  // "pro-only" filters on a plan the call did not give: PostHog decides it.
  EXPECT_EQ(response.results().at("pro-only").source(), v1::FLAG_DECISION_SOURCE_REMOTE);
  const nlohmann::json body = nlohmann::json::parse(http_.requests().back().body);
  EXPECT_EQ(body["person_properties"], nlohmann::json({{"email", "ada@example.com"},
                                                       {"age", 30},
                                                       {"beta", true},
                                                       {"tags", nlohmann::json::array({"x"})}}))
      << body.dump();
}

TEST_F(EvaluateFlagsTest, PostHogIsAskedWithoutGeoipUnlessTheCallTurnsItOn) {
  const std::pair<v1::GeoipMode, bool> cases[] = {{v1::GEOIP_MODE_UNSPECIFIED, true},
                                                  {v1::GEOIP_MODE_DISABLED, true},
                                                  {v1::GEOIP_MODE_ENABLED, false}};
  for (const auto& [mode, disabled] : cases) {
    http_.Respond(200, kPostHogAnswer);
    v1::EvaluateFlagsRequest request = Request({"pro-only"}, /*only_local=*/false);
    request.mutable_options()->set_geoip(mode);
    v1::EvaluateFlagsResponse response;
    ASSERT_TRUE(Evaluate(request, &response).ok());
    const nlohmann::json body = nlohmann::json::parse(http_.requests().back().body);
    EXPECT_EQ(body["geoip_disable"], disabled) << v1::GeoipMode_Name(mode);
  }
}

TEST_F(EvaluateFlagsTest, AProjectMayLetPostHogUseGeoipByDefault) {
  http_.Respond(200, kDefinitions);
  Start(&http_, FlagsConfig{}, /*disable_geoip=*/false);
  http_.Respond(200, kPostHogAnswer);
  v1::EvaluateFlagsResponse response;
  ASSERT_TRUE(Evaluate(Request({"pro-only"}, false), &response).ok());
  EXPECT_EQ(nlohmann::json::parse(http_.requests().back().body)["geoip_disable"], false);

  http_.Respond(200, kPostHogAnswer);
  v1::EvaluateFlagsRequest off = Request({"pro-only"}, false);
  off.mutable_options()->set_geoip(v1::GEOIP_MODE_DISABLED);
  ASSERT_TRUE(Evaluate(off, &response).ok());
  EXPECT_EQ(nlohmann::json::parse(http_.requests().back().body)["geoip_disable"], true);
}

TEST_F(EvaluateFlagsTest, AnUnknownGeoipModeIsInvalidArgument) {
  v1::EvaluateFlagsRequest request = Request({}, false);
  request.mutable_options()->set_geoip(static_cast<v1::GeoipMode>(9));
  v1::EvaluateFlagsResponse response;
  grpc::Status status = Evaluate(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"options.geoip"});
}

TEST_F(EvaluateFlagsTest, WhenPostHogFailsTheUndecidedFlagIsAnErrorAndTheRestStand) {
  http_.Respond(503, "unavailable");
  v1::EvaluateFlagsResponse response;
  ASSERT_TRUE(Evaluate(Request({}, /*only_local=*/false), &response).ok());
  EXPECT_EQ(response.results().at("pro-only").error_code(), v1::FLAG_ERROR_CODE_GENERAL);
  EXPECT_TRUE(response.results().at("everyone").enabled());
}

// Answers the definitions poll at once, and holds every `/flags` call until
// Release.
class GatedPostHog final : public HttpClient {
 public:
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    HttpResponse response;
    response.status_code = 200;
    if (request.url.find("/flags/definitions") != std::string::npos) {
      response.body = kDefinitions;
      return response;
    }
    absl::MutexLock lock(&mu_);
    ++waiting_;
    mu_.Await(absl::Condition(&released_));
    response.body = kPostHogAnswer;
    return response;
  }

  void AwaitWaiting(int count) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return waiting_ >= count; };
    mu_.Await(absl::Condition(&enough));
  }

  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }

 private:
  absl::Mutex mu_;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

TEST_F(EvaluateFlagsTest, PastTheLimitOfWaitingEvaluationsUndecidedFlagsFailAtOnce) {
  GatedPostHog posthog;
  FlagsConfig options;
  options.max_remote_evaluations = 1;
  Start(&posthog, options);

  v1::EvaluateFlagsResponse first;
  grpc::Status first_status;
  std::thread waiting([&] { first_status = Evaluate(Request({}, false), &first); });
  posthog.AwaitWaiting(1);

  v1::EvaluateFlagsResponse second;
  ASSERT_TRUE(Evaluate(Request({}, false), &second).ok());
  const v1::FlagResult& refused = second.results().at("pro-only");
  EXPECT_EQ(refused.error_code(), v1::FLAG_ERROR_CODE_GENERAL);
  EXPECT_NE(refused.error_message().find("already waiting"), std::string::npos)
      << refused.error_message();
  EXPECT_TRUE(second.results().at("everyone").enabled());  // Local results stand.

  posthog.Release();
  waiting.join();
  ASSERT_TRUE(first_status.ok());
  EXPECT_EQ(first.results().at("pro-only").source(), v1::FLAG_DECISION_SOURCE_REMOTE);
}

TEST_F(EvaluateFlagsTest, AMissingDistinctIdIsInvalidArgumentNamingTheField) {
  v1::EvaluateFlagsRequest request = Request({}, true);
  request.mutable_context()->clear_distinct_id();
  v1::EvaluateFlagsResponse response;
  grpc::ClientContext context;
  const grpc::Status status = stub_->EvaluateFlags(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"context.distinct_id"});
}

TEST_F(EvaluateFlagsTest, MoreKeysThanTheLimitIsInvalidArgumentNamingTheFieldAndTheLimit) {
  std::vector<std::string> keys;
  for (int k = 0; k <= 1000; ++k) keys.push_back(absl::StrCat("unknown-", k));
  v1::EvaluateFlagsResponse response;
  const grpc::Status status = Evaluate(Request(keys, /*only_local=*/true), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"keys"});
  EXPECT_NE(status.error_message().find("1001"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("1000"), std::string::npos) << status.error_message();

  keys.pop_back();  // Exactly the limit is evaluated.
  EXPECT_TRUE(Evaluate(Request(keys, /*only_local=*/true), &response).ok());
  EXPECT_EQ(response.results_size(), 1000);
}

TEST_F(EvaluateFlagsTest, BytesThatAreNotARequestAreInvalidArgument) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext context;
  const std::string garbage = "\xff\xff\xff\xff not a protobuf";
  grpc::Slice slice(garbage);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  generic.UnaryCall(&context, "/posthog.v1.FlagService/EvaluateFlags", grpc::StubOptions(),
                    &request, &response, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace posthog_gateway
