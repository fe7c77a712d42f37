// flagd.evaluation.v2.Service through a real (in-process) gRPC server: each
// Resolve RPC's value, variant, reason and metadata; the error codes flagd's
// providers turn into OpenFeature's; the context convention; the project
// headers; ResolveAll; EventStream's events and its end on shutdown.
//
// grpc_cpp_plugin cannot generate this service's stubs (server/service/
// flagd_service.h), so the test calls it the way generated stubs do, through
// gRPC's blocking call and reader helpers.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flagd/evaluation/v2/evaluation.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/config/key_store.h"
#include "server/flags/definitions_store.h"
#include "server/paging/resume_token.h"
#include "server/posthog/json_struct.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "server/service/flagd_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/grpc_status_details.h"
#include "tests/fakes/status_matchers.h"

namespace posthog_gateway {
namespace {

namespace v2 = ::flagd::evaluation::v2;
using nlohmann::json;
using test_support::ErrorReason;
using test_support::FakeClock;
using test_support::FakeHttpClient;
using test_support::ViolatedFields;

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
                           "rollout_percentage": 100}]}},
  {"id": 5, "key": "limit", "active": true, "version": 3,
   "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"true": "42"}}},
  {"id": 6, "key": "ratio", "active": true, "version": 1,
   "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"true": "0.25"}}},
  {"id": 7, "key": "broken", "active": true, "version": 1,
   "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"true": "{not json"}}},
  {"id": 8, "key": "off", "active": false, "version": 4,
   "filters": {"groups": [{"rollout_percentage": 100}]}}],
  "group_type_mapping": {}, "cohorts": {}})";

constexpr char kPostHogAnswer[] = R"({"flags": {"pro-only": {"key": "pro-only",
  "enabled": true, "variant": null,
  "reason": {"code": "condition_match", "condition_index": 0,
             "description": "Matched condition set 1"},
  "metadata": {"id": 4, "version": 1}}}, "requestId": "posthog-request"})";

class FlagdServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_.Respond(200, kDefinitions);
    config_ = test_support::EnvKeyProjectConfig();
    keys_ = test_support::EnvKeys(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    store_ = std::make_unique<flags::DefinitionsStore>(*registry_->Resolve("demo"), FlagsConfig{});
    store_->PollOnce();
    const std::map<std::string, FlagProject> projects{{"demo", {store_.get(), nullptr}}};
    flags_ = std::make_unique<FlagServiceImpl>(registry_.get(), projects, FlagsConfig{},
                                               PagingConfig{}, &tokens_, &clock_);
    flagd_ = std::make_unique<FlagdServiceImpl>(flags_.get(), registry_.get(), projects,
                                                absl::Hours(1), authorizer_);
    grpc::ServerBuilder builder;
    builder.RegisterService(flagd_.get());
    server_ = builder.BuildAndStart();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }

  void TearDown() override {
    flagd_->Shutdown();
    server_->Shutdown();
  }

  template <typename Request, typename Response>
  grpc::Status Call(const char* method, const Request& request, Response* response,
                    const std::map<std::string, std::string>& headers = {}) {
    grpc::ClientContext context;
    for (const auto& [name, value] : headers) context.AddMetadata(name, value);
    return grpc::internal::BlockingUnaryCall<Request, Response>(
        channel_.get(),
        grpc::internal::RpcMethod((std::string("/flagd.evaluation.v2.Service/") + method).c_str(),
                                  grpc::internal::RpcMethod::NORMAL_RPC),
        &context, request, response);
  }

  template <typename Request>
  static Request For(const std::string& key, const json& context) {
    Request request;
    request.set_flag_key(key);
    *request.mutable_context() = StructFromJson(context);
    return request;
  }

  static json User() { return {{"targetingKey", "user-1"}}; }

  GatewayConfig config_;
  FakeHttpClient http_;
  FakeClock clock_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<flags::DefinitionsStore> store_;
  std::unique_ptr<FlagServiceImpl> flags_;
  // SetUp's service authorizes with it; a test may replace it first.
  const Authorizer* authorizer_ = Authorizer::AllowAll();
  std::unique_ptr<FlagdServiceImpl> flagd_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

json Metadata(const google::protobuf::Struct& metadata) { return JsonFromStruct(metadata); }

TEST_F(FlagdServiceTest, BooleanIsWhetherTheFlagIsOnWithPostHogsIdAndVersion) {
  v2::ResolveBooleanResponse on;
  ASSERT_TRUE(Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("everyone", User()), &on).ok());
  ASSERT_TRUE(on.has_value());
  EXPECT_TRUE(on.value());
  EXPECT_EQ(on.variant(), "true");
  EXPECT_EQ(on.reason(), "TARGETING_MATCH");
  EXPECT_EQ(Metadata(on.metadata()), json({{"flagId", 1},
                                           {"flagVersion", 2},
                                           {"posthogReason", "Matched condition set 1"},
                                           {"decidedBy", "gateway"}}));

  v2::ResolveBooleanResponse rolled_out;
  ASSERT_TRUE(
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("nobody", User()), &rolled_out).ok());
  ASSERT_TRUE(rolled_out.has_value());
  EXPECT_FALSE(rolled_out.value());
  EXPECT_EQ(rolled_out.variant(), "false");
  EXPECT_EQ(rolled_out.reason(), "SPLIT");

  v2::ResolveBooleanResponse disabled;
  ASSERT_TRUE(
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("off", User()), &disabled).ok());
  ASSERT_TRUE(disabled.has_value());
  EXPECT_FALSE(disabled.value());
  // A variant: providers keep the value false instead of the caller's default.
  EXPECT_EQ(disabled.variant(), "false");
  EXPECT_EQ(disabled.reason(), "DISABLED");

  // A variant of a multivariate flag is on.
  v2::ResolveBooleanResponse variant;
  ASSERT_TRUE(
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("colors", User()), &variant).ok());
  EXPECT_TRUE(variant.value());
  EXPECT_EQ(variant.variant(), "blue");
}

TEST_F(FlagdServiceTest, StringIsTheVariantKey) {
  v2::ResolveStringResponse blue;
  ASSERT_TRUE(Call("ResolveString", For<v2::ResolveStringRequest>("colors", User()), &blue).ok());
  ASSERT_TRUE(blue.has_value());
  EXPECT_EQ(blue.value(), "blue");
  EXPECT_EQ(blue.variant(), "blue");
  EXPECT_EQ(blue.reason(), "SPLIT");

  // No variant for the person: no value, reason DEFAULT (the caller's default).
  v2::ResolveStringResponse none;
  ASSERT_TRUE(Call("ResolveString", For<v2::ResolveStringRequest>("nobody", User()), &none).ok());
  EXPECT_FALSE(none.has_value());
  EXPECT_FALSE(none.has_variant());
  EXPECT_EQ(none.reason(), "DEFAULT");
  EXPECT_EQ(Metadata(none.metadata()).value("flagId", 0), 2);

  v2::ResolveStringResponse boolean;
  grpc::Status mismatch =
      Call("ResolveString", For<v2::ResolveStringRequest>("everyone", User()), &boolean);
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(mismatch), "TYPE_MISMATCH");
}

TEST_F(FlagdServiceTest, NumbersAndObjectsAreThePayloadOfTheValueThePersonGets) {
  v2::ResolveIntResponse limit;
  ASSERT_TRUE(Call("ResolveInt", For<v2::ResolveIntRequest>("limit", User()), &limit).ok());
  EXPECT_EQ(limit.value(), 42);
  EXPECT_EQ(limit.variant(), "true");
  EXPECT_EQ(limit.reason(), "TARGETING_MATCH");

  v2::ResolveFloatResponse ratio;
  ASSERT_TRUE(Call("ResolveFloat", For<v2::ResolveFloatRequest>("ratio", User()), &ratio).ok());
  EXPECT_EQ(ratio.value(), 0.25);

  v2::ResolveIntResponse fractional;
  grpc::Status not_int =
      Call("ResolveInt", For<v2::ResolveIntRequest>("ratio", User()), &fractional);
  EXPECT_EQ(not_int.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(not_int), "TYPE_MISMATCH");

  v2::ResolveObjectResponse hex;
  ASSERT_TRUE(Call("ResolveObject", For<v2::ResolveObjectRequest>("colors", User()), &hex).ok());
  EXPECT_EQ(JsonFromStruct(hex.value()), json({{"hex", "#00f"}}));
  EXPECT_EQ(hex.variant(), "blue");

  v2::ResolveObjectResponse broken;
  grpc::Status parse =
      Call("ResolveObject", For<v2::ResolveObjectRequest>("broken", User()), &broken);
  EXPECT_EQ(parse.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(ErrorReason(parse), "PARSE_ERROR");

  v2::ResolveObjectResponse number;
  grpc::Status not_object =
      Call("ResolveObject", For<v2::ResolveObjectRequest>("limit", User()), &number);
  EXPECT_EQ(not_object.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(not_object), "TYPE_MISMATCH");

  // No payload for `false`: the caller's default.
  v2::ResolveFloatResponse none;
  ASSERT_TRUE(Call("ResolveFloat", For<v2::ResolveFloatRequest>("nobody", User()), &none).ok());
  EXPECT_FALSE(none.has_value());
  EXPECT_EQ(none.reason(), "DEFAULT");
}

TEST_F(FlagdServiceTest, ContextAttributesArePersonPropertiesAndPostHogDecidesTheRest) {
  v2::ResolveBooleanResponse pro;
  ASSERT_TRUE(Call("ResolveBoolean",
                   For<v2::ResolveBooleanRequest>("pro-only",
                                                  {{"targetingKey", "user-1"}, {"plan", "pro"}}),
                   &pro)
                  .ok());
  EXPECT_TRUE(pro.value());
  EXPECT_EQ(Metadata(pro.metadata())["decidedBy"], "gateway");

  // Without the property the gateway cannot decide: PostHog does.
  http_.Respond(200, kPostHogAnswer);
  v2::ResolveBooleanResponse remote;
  ASSERT_TRUE(
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("pro-only", User()), &remote).ok());
  EXPECT_TRUE(remote.value());
  EXPECT_EQ(remote.reason(), "TARGETING_MATCH");
  EXPECT_EQ(Metadata(remote.metadata())["decidedBy"], "posthog");
  const std::vector<HttpRequest> requests = http_.requests();
  const json asked = json::parse(requests.back().body);
  EXPECT_EQ(asked["distinct_id"], "user-1");
}

TEST_F(FlagdServiceTest, ErrorsAreTheCodesProvidersMapToOpenFeatureErrors) {
  http_.Respond(200, kPostHogAnswer);  // Has no flag `missing`.
  v2::ResolveBooleanResponse response;
  grpc::Status missing =
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("missing", User()), &response);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorReason(missing), "FLAG_NOT_FOUND");

  grpc::Status no_key = Call(
      "ResolveBoolean", For<v2::ResolveBooleanRequest>("everyone", {{"plan", "pro"}}), &response);
  EXPECT_EQ(no_key.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(no_key), "TARGETING_KEY_MISSING");
  EXPECT_EQ(ViolatedFields(no_key), std::vector<std::string>{"context.targetingKey"});

  grpc::Status bad_groups =
      Call("ResolveBoolean",
           For<v2::ResolveBooleanRequest>("everyone", {{"targetingKey", "u"}, {"$groups", "acme"}}),
           &response);
  EXPECT_EQ(bad_groups.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(bad_groups), "INVALID_CONTEXT");
  EXPECT_EQ(ViolatedFields(bad_groups), std::vector<std::string>{"context.$groups"});

  grpc::Status no_flag =
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("", User()), &response);
  EXPECT_EQ(no_flag.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(no_flag), std::vector<std::string>{"flag_key"});

  // PostHog unreachable for a flag the gateway cannot decide: GENERAL, as
  // INTERNAL (providers retry UNAVAILABLE and call it FLAG_NOT_FOUND).
  http_.Respond(503, "");
  grpc::Status general =
      Call("ResolveBoolean", For<v2::ResolveBooleanRequest>("pro-only", User()), &response);
  EXPECT_EQ(general.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ErrorReason(general), "GENERAL");
}

TEST_F(FlagdServiceTest, TheProjectIsNamedByHeaderOrSelector) {
  v2::ResolveBooleanResponse response;
  const auto request = For<v2::ResolveBooleanRequest>("everyone", User());
  EXPECT_TRUE(Call("ResolveBoolean", request, &response, {{"x-posthog-project", "demo"}}).ok());
  EXPECT_TRUE(Call("ResolveBoolean", request, &response, {{"flagd-selector", "demo"}}).ok());
  grpc::Status unknown = Call("ResolveBoolean", request, &response, {{"flagd-selector", "other"}});
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status unknown_header =
      Call("ResolveBoolean", request, &response, {{"x-posthog-project", "other"}});
  EXPECT_EQ(unknown_header.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FlagdServiceTest, ResolveAllGivesEveryDecidableFlagItsPostHogValue) {
  http_.Respond(503, "");  // `pro-only` cannot be decided: left out.
  v2::ResolveAllRequest request;
  *request.mutable_context() = StructFromJson(User());
  v2::ResolveAllResponse response;
  ASSERT_TRUE(Call("ResolveAll", request, &response).ok());
  const auto& flags = response.flags();
  EXPECT_EQ(flags.size(), 7u);
  EXPECT_FALSE(flags.contains("pro-only"));
  EXPECT_EQ(flags.at("everyone").value_case(), v2::AnyFlag::kBoolValue);
  EXPECT_TRUE(flags.at("everyone").bool_value());
  EXPECT_EQ(flags.at("everyone").reason(), "TARGETING_MATCH");
  EXPECT_EQ(flags.at("colors").string_value(), "blue");
  EXPECT_EQ(flags.at("colors").variant(), "blue");
  EXPECT_FALSE(flags.at("off").bool_value());
  EXPECT_EQ(flags.at("off").reason(), "DISABLED");
  EXPECT_EQ(JsonFromStruct(flags.at("limit").metadata())["flagVersion"], 3);
}

TEST_F(FlagdServiceTest, EventStreamIsReadyAtOnceNamesChangedFlagsAndEndsOnShutdown) {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v2::EventStreamResponse>> reader(
      grpc::internal::ClientReaderFactory<v2::EventStreamResponse>::Create(
          channel_.get(),
          grpc::internal::RpcMethod("/flagd.evaluation.v2.Service/EventStream",
                                    grpc::internal::RpcMethod::SERVER_STREAMING),
          &context, v2::EventStreamRequest()));
  v2::EventStreamResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.type(), "provider_ready");

  // `nobody` rolled out, `off` removed, `fresh` added.
  json changed = json::parse(kDefinitions);
  changed["flags"][1]["filters"]["groups"][0]["rollout_percentage"] = 100;
  changed["flags"].erase(7);
  changed["flags"].push_back({{"id", 9},
                              {"key", "fresh"},
                              {"active", true},
                              {"filters", {{"groups", {{{"rollout_percentage", 100}}}}}}});
  http_.Respond(200, changed.dump());
  store_->PollOnce();
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.type(), "configuration_change");
  EXPECT_EQ(JsonFromStruct(event.data()), json({{"flags",
                                                 {{"nobody", {{"type", "update"}}},
                                                  {"off", {{"type", "delete"}}},
                                                  {"fresh", {{"type", "write"}}}}}}));
  EXPECT_EQ(flagd_->EventStreams().at("demo"), 1u);

  flagd_->Shutdown();
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(FlagdServiceTest, EventStreamSendsKeepAlives) {
  // A stream on a watch with a short keep-alive period.
  const std::map<std::string, FlagProject> projects{{"demo", {store_.get(), nullptr}}};
  FlagdServiceImpl quick(flags_.get(), registry_.get(), projects, absl::Milliseconds(20),
                         Authorizer::AllowAll());
  grpc::ServerBuilder builder;
  builder.RegisterService(&quick);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  std::shared_ptr<grpc::Channel> channel = server->InProcessChannel(grpc::ChannelArguments());
  {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v2::EventStreamResponse>> reader(
        grpc::internal::ClientReaderFactory<v2::EventStreamResponse>::Create(
            channel.get(),
            grpc::internal::RpcMethod("/flagd.evaluation.v2.Service/EventStream",
                                      grpc::internal::RpcMethod::SERVER_STREAMING),
            &context, v2::EventStreamRequest()));
    v2::EventStreamResponse event;
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.type(), "provider_ready");
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.type(), "keep_alive");
    context.TryCancel();
  }
  quick.Shutdown();
  server->Shutdown();
}

// With authorization on, every flagd method needs the grant flag_evaluation
// on the call's project, as EvaluateFlags does.
using ::posthog_gateway::test_support::IsOk;
using ::posthog_gateway::test_support::StatusIs;
using ::testing::HasSubstr;

class FlagdServiceAuthorizationTest : public FlagdServiceTest {
 protected:
  void SetUp() override {
    GatewayConfig config = test_support::EnvKeyProjectConfig();
    config.server.caller_identity = CallerIdentitySource::kLinkerd;
    config.authorization.callers = {{"evaluator", {"demo"}, {"flag_evaluation"}, {}},
                                    {"collector", {"demo"}, {"capture"}, {}}};
    absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
        Authorizer::Create(config, nullptr, &clock_);
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    owned_authorizer_ = *std::move(authorizer);
    authorizer_ = owned_authorizer_.get();
    FlagdServiceTest::SetUp();
  }

  std::unique_ptr<Authorizer> owned_authorizer_;
};

TEST_F(FlagdServiceAuthorizationTest, EveryMethodNeedsFlagEvaluationOnTheProject) {
  const auto request = For<v2::ResolveBooleanRequest>("everyone", User());
  v2::ResolveBooleanResponse response;
  EXPECT_THAT(Call("ResolveBoolean", request, &response),
              StatusIs(grpc::StatusCode::UNAUTHENTICATED, HasSubstr("no caller identity")));
  EXPECT_THAT(Call("ResolveBoolean", request, &response, {{"l5d-client-id", "collector"}}),
              StatusIs(grpc::StatusCode::PERMISSION_DENIED, HasSubstr("flag_evaluation")));
  v2::ResolveAllResponse all;
  EXPECT_THAT(Call("ResolveAll", v2::ResolveAllRequest(), &all, {{"l5d-client-id", "collector"}}),
              StatusIs(grpc::StatusCode::PERMISSION_DENIED));

  ASSERT_THAT(Call("ResolveBoolean", request, &response, {{"l5d-client-id", "evaluator"}}), IsOk());
  EXPECT_TRUE(response.value());

  // EventStream too: refused before provider_ready.
  for (const char* caller : {"collector", "evaluator"}) {
    grpc::ClientContext context;
    context.AddMetadata("l5d-client-id", caller);
    std::unique_ptr<grpc::ClientReader<v2::EventStreamResponse>> reader(
        grpc::internal::ClientReaderFactory<v2::EventStreamResponse>::Create(
            channel_.get(),
            grpc::internal::RpcMethod("/flagd.evaluation.v2.Service/EventStream",
                                      grpc::internal::RpcMethod::SERVER_STREAMING),
            &context, v2::EventStreamRequest()));
    v2::EventStreamResponse event;
    if (std::string(caller) == "collector") {
      EXPECT_FALSE(reader->Read(&event));
      EXPECT_THAT(reader->Finish(), StatusIs(grpc::StatusCode::PERMISSION_DENIED));
    } else {
      ASSERT_TRUE(reader->Read(&event));
      EXPECT_EQ(event.type(), "provider_ready");
      context.TryCancel();
      while (reader->Read(&event)) {
      }
      reader->Finish();
    }
  }
}

}  // namespace
}  // namespace posthog_gateway
