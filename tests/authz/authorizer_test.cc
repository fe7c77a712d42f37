// The authorizer through a real gRPC server: a stand-in UserService whose
// handler asks the authorizer about a method the test chooses, so that the
// identity comes from real metadata and the answer reaches a real client.

#include "server/authz/authorizer.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/authz/bearer_tokens.h"
#include "server/config/config.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/grpc_status_details.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

using ::posthog_gateway::test_support::ErrorReason;
using ::posthog_gateway::test_support::FakeClock;

constexpr char kDeletePerson[] = "/posthog.v1.PersonService/DeletePerson";
constexpr char kGetPerson[] = "/posthog.v1.PersonService/GetPerson";
constexpr char kCapture[] = "/posthog.v1.CaptureService/BatchCaptureEvents";
constexpr char kDeleteFlag[] = "/posthog.v1.FlagService/DeleteFlag";
constexpr char kEvaluate[] = "/posthog.v1.FlagService/EvaluateFlags";
constexpr char kChecker[] = "spiffe://cluster.local/ns/shop/sa/checkout";
constexpr char kGdpr[] = "spiffe://cluster.local/ns/support/sa/gdpr";

// Answers GetCurrentUser with what the authorizer says of `method` (and
// `cost`) on the request's project.
class AskingService final : public posthog::v1::UserService::Service {
 public:
  explicit AskingService(const Authorizer* authorizer) : authorizer_(authorizer) {}

  void Ask(std::string method, int64_t cost = 1) {
    absl::MutexLock lock(&mu_);
    method_ = std::move(method);
    cost_ = cost;
  }

  grpc::Status GetCurrentUser(grpc::ServerContext* context,
                              const posthog::v1::GetCurrentUserRequest* request,
                              posthog::v1::GetCurrentUserResponse*) override {
    absl::MutexLock lock(&mu_);
    return authorizer_->Check(*context, method_, request->project(), cost_);
  }

 private:
  const Authorizer* const authorizer_;
  absl::Mutex mu_;
  std::string method_ ABSL_GUARDED_BY(mu_);
  int64_t cost_ ABSL_GUARDED_BY(mu_) = 1;
};

ProjectConfig Project(const std::string& alias) {
  ProjectConfig project;
  project.alias = alias;
  project.project_id = 1;
  return project;
}

GatewayConfig TwoProjects(CallerIdentitySource source) {
  GatewayConfig config;
  config.projects = {Project("prod"), Project("staging")};
  config.default_project = "prod";
  config.server.caller_identity = source;
  config.authorization.callers = {
      {kChecker, {"prod"}, {"capture", "flag_evaluation"}, std::nullopt},
      {kGdpr, {"*"}, {"persons_read", "persons_write"}, std::nullopt},
  };
  return config;
}

std::string HexSha256(absl::string_view token) {
  const std::array<unsigned char, 32> digest = Sha256(token);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

// ErrorInfo metadata of a status.
std::map<std::string, std::string> ErrorMetadata(const grpc::Status& status) {
  google::rpc::Status details;
  std::map<std::string, std::string> metadata;
  if (!details.ParseFromString(status.error_details())) return metadata;
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) metadata.insert(info.metadata().begin(), info.metadata().end());
  }
  return metadata;
}

std::optional<int64_t> RetryMillis(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo info;
    if (any.UnpackTo(&info)) {
      return info.retry_delay().seconds() * 1000 + info.retry_delay().nanos() / 1000000;
    }
  }
  return std::nullopt;
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void Start(const GatewayConfig& config, const BearerTokens* tokens = nullptr) {
    absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
        Authorizer::Create(config, tokens, &clock_);
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
    service_ = std::make_unique<AskingService>(authorizer_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = posthog::v1::UserService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Calls as a caller presenting `headers`, asking about `method` on
  // `project`.
  grpc::Status Call(const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::string& method, const std::string& project, int64_t cost = 1) {
    service_->Ask(method, cost);
    grpc::ClientContext context;
    for (const auto& [name, value] : headers) context.AddMetadata(name, value);
    posthog::v1::GetCurrentUserRequest request;
    request.set_project(project);
    posthog::v1::GetCurrentUserResponse response;
    return stub_->GetCurrentUser(&context, request, &response);
  }

  static std::vector<std::pair<std::string, std::string>> Xfcc(const std::string& uri) {
    return {{"x-forwarded-client-cert",
             absl::StrCat("By=spiffe://cluster.local/ns/gw/sa/gateway;Hash=1;URI=", uri)}};
  }

  FakeClock clock_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<AskingService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<posthog::v1::UserService::Stub> stub_;
};

TEST_F(AuthorizerTest, NoIdentityIsUnauthenticatedAndSaysWhatIsTrusted) {
  Start(TwoProjects(CallerIdentitySource::kIstio));
  const grpc::Status status = Call({}, kGetPerson, "prod");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("x-forwarded-client-cert"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(ErrorReason(status), "CALLER_UNKNOWN");
}

TEST_F(AuthorizerTest, WithoutAnIdentitySourceEveryCallIsUnauthenticated) {
  Start(TwoProjects(CallerIdentitySource::kNone));
  // Headers of an untrusted source are anyone's to send: ignored.
  EXPECT_EQ(Call(Xfcc(kGdpr), kGetPerson, "prod").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call({{"l5d-client-id", kGdpr}}, kGetPerson, "prod").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// IdentifiesCallers lets the access log skip Identify where it can only
// fail; where it may name someone, it says so.
TEST_F(AuthorizerTest, IdentifiesCallersOnlyWithAnIdentitySourceOrTokens) {
  absl::StatusOr<std::unique_ptr<Authorizer>> none =
      Authorizer::Create(TwoProjects(CallerIdentitySource::kNone), nullptr, &clock_);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE((*none)->IdentifiesCallers());
  absl::StatusOr<std::unique_ptr<Authorizer>> istio =
      Authorizer::Create(TwoProjects(CallerIdentitySource::kIstio), nullptr, &clock_);
  ASSERT_TRUE(istio.ok()) << istio.status();
  EXPECT_TRUE((*istio)->IdentifiesCallers());
}

TEST_F(AuthorizerTest, AGrantedCallerIsAllowedOnItsProjects) {
  Start(TwoProjects(CallerIdentitySource::kIstio));
  EXPECT_TRUE(Call(Xfcc(kGdpr), kDeletePerson, "prod").ok());
  EXPECT_TRUE(Call(Xfcc(kGdpr), kDeletePerson, "staging").ok());  // "*".
  EXPECT_TRUE(Call(Xfcc(kChecker), kCapture, "prod").ok());
  EXPECT_TRUE(Call(Xfcc(kChecker), kCapture, "").ok());  // The default project.
}

TEST_F(AuthorizerTest, AMissingGrantIsPermissionDeniedNamingItAndTheProject) {
  Start(TwoProjects(CallerIdentitySource::kIstio));
  grpc::Status status = Call(Xfcc(kChecker), kDeletePerson, "prod");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(),
            "caller \"spiffe://cluster.local/ns/shop/sa/checkout\" lacks the grant "
            "\"persons_write\" on project \"prod\" (needed by "
            "posthog.v1.PersonService/DeletePerson)");
  EXPECT_EQ(ErrorReason(status), "GRANT_MISSING");
  EXPECT_EQ(ErrorMetadata(status), (std::map<std::string, std::string>{
                                       {"caller", kChecker},
                                       {"grant", "persons_write"},
                                       {"project", "prod"},
                                       {"method", "posthog.v1.PersonService/DeletePerson"}}));
  // The grant, on a project the caller does not have.
  status = Call(Xfcc(kChecker), kCapture, "staging");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ErrorMetadata(status)["project"], "staging");
  EXPECT_EQ(ErrorMetadata(status)["grant"], "capture");
  // A caller the grants do not know.
  status = Call(Xfcc("spiffe://cluster.local/ns/batch/sa/job"), kDeleteFlag, "prod");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ErrorMetadata(status)["grant"], "flag_management");
}

TEST_F(AuthorizerTest, AnUnknownMethodIsDeniedToEveryone) {
  Start(TwoProjects(CallerIdentitySource::kIstio));
  const grpc::Status status = Call(Xfcc(kGdpr), "/posthog.v1.PersonService/Exfiltrate", "prod");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("in no grant"), std::string::npos);
}

TEST_F(AuthorizerTest, TheAttackersUnclosedQuoteNamesNobody) {
  Start(TwoProjects(CallerIdentitySource::kIstio));
  // What Envoy's APPEND_FORWARD makes of a caller who sent its own header.
  const std::string header = absl::StrCat(
      "URI=", kGdpr, ";Subject=\",By=spiffe://cluster.local/ns/gw/sa/gateway;Hash=1;URI=",
      "spiffe://cluster.local/ns/batch/sa/job");
  EXPECT_EQ(Call({{"x-forwarded-client-cert", header}}, kDeletePerson, "prod").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthorizerTest, ARepeatedIdentityHeaderNamesNobody) {
  Start(TwoProjects(CallerIdentitySource::kLinkerd));
  EXPECT_TRUE(Call({{"l5d-client-id", kGdpr}}, kGetPerson, "prod").ok());
  EXPECT_EQ(Call({{"l5d-client-id", kGdpr}, {"l5d-client-id", kChecker}}, kGetPerson, "prod")
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

class BearerAuthorizerTest : public AuthorizerTest {
 protected:
  void SetUp() override {
    dir_ = test_support::ScratchDir("tokens");
    path_ = dir_ + "/tokens";
    std::ofstream(path_) << "billing " << HexSha256("billing-token") << "\n";
    tokens_ = std::make_unique<BearerTokens>(path_);
  }
  std::string dir_;
  std::string path_;
  std::unique_ptr<BearerTokens> tokens_;
};

TEST_F(BearerAuthorizerTest, BearerTokensAloneIdentifyCallers) {
  absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
      Authorizer::Create(TwoProjects(CallerIdentitySource::kNone), tokens_.get(), &clock_);
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  EXPECT_TRUE((*authorizer)->IdentifiesCallers());
}

TEST_F(BearerAuthorizerTest, ABearerTokenNamesItsCallerAndAWrongOneIsRefused) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kIstio);
  config.authorization.callers.push_back({"billing", {"staging"}, {"persons_read"}, {}});
  Start(config, tokens_.get());
  EXPECT_TRUE(Call({{"authorization", "Bearer billing-token"}}, kGetPerson, "staging").ok());
  EXPECT_EQ(Call({{"authorization", "Bearer billing-token"}}, kGetPerson, "prod").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call({{"authorization", "Bearer billing-tokeN"}}, kGetPerson, "staging").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A wrong token is refused even when the mesh names a granted caller.
  std::vector<std::pair<std::string, std::string>> both = Xfcc(kGdpr);
  both.emplace_back("authorization", "Bearer wrong");
  EXPECT_EQ(Call(both, kGetPerson, "prod").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Without a token the mesh's identity stands.
  EXPECT_TRUE(Call(Xfcc(kGdpr), kGetPerson, "prod").ok());
}

TEST_F(AuthorizerTest, DevelopmentModeAllowsEveryCall) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kNone);
  config.authorization.development_mode = true;
  config.authorization.callers.clear();
  Start(config);
  EXPECT_TRUE(Call({}, kDeletePerson, "prod").ok());
  EXPECT_TRUE(Call({}, kDeleteFlag, "staging").ok());
  EXPECT_TRUE(Call({}, "/posthog.v1.Unknown/Method", "prod").ok());
}

TEST_F(AuthorizerTest, WithoutDevelopmentModeOrCallersEveryCallIsRefused) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kLinkerd);
  config.authorization.callers.clear();
  Start(config);
  EXPECT_EQ(Call({}, kGetPerson, "prod").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call({{"l5d-client-id", "web.default.serviceaccount.identity.linkerd.cluster.local"}},
                 kGetPerson, "prod")
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST(AuthorizerCreateTest, RefusesUnknownGrantsAndProjectsAndRepeatedCallers) {
  FakeClock clock;
  GatewayConfig config = TwoProjects(CallerIdentitySource::kIstio);
  config.authorization.callers.push_back({"x", {"prod"}, {"persons_delete"}, {}});
  absl::Status status = Authorizer::Create(config, nullptr, &clock).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("unknown grant \"persons_delete\"; known: capture, "
                                  "flag_evaluation, flag_management, groups_read, "
                                  "groups_write, persons_read, persons_write, user"),
            absl::string_view::npos)
      << status;
  config = TwoProjects(CallerIdentitySource::kIstio);
  config.authorization.callers.push_back({"x", {"dev"}, {"user"}, {}});
  EXPECT_NE(Authorizer::Create(config, nullptr, &clock)
                .status()
                .message()
                .find("\"dev\" is no configured project"),
            absl::string_view::npos);
  config = TwoProjects(CallerIdentitySource::kIstio);
  config.authorization.callers.push_back({kGdpr, {"prod"}, {"user"}, {}});
  EXPECT_NE(Authorizer::Create(config, nullptr, &clock).status().message().find("listed twice"),
            absl::string_view::npos);
}

// Quotas: per caller and project, so that one caller spending its own does
// not touch another's; RESOURCE_EXHAUSTED with RetryInfo until it refills.
TEST_F(AuthorizerTest, APersonsQuotaStopsOneCallerAndNotTheOthers) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kLinkerd);
  config.authorization.quotas.persons_per_minute = 3;
  config.authorization.callers.push_back({"other", {"*"}, {"persons_read"}, {}});
  Start(config);
  const std::vector<std::pair<std::string, std::string>> gdpr = {{"l5d-client-id", kGdpr}};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Call(gdpr, kGetPerson, "prod").ok()) << i;
  grpc::Status status = Call(gdpr, kDeletePerson, "prod");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ErrorReason(status), "CALLER_QUOTA_EXCEEDED");
  EXPECT_EQ(RetryMillis(status), 20000);  // One call's worth of 3 a minute.
  EXPECT_NE(status.error_message().find("quota of 3 persons requests per minute"),
            std::string::npos)
      << status.error_message();
  // Another caller, and the same caller on another project, are untouched.
  EXPECT_TRUE(Call({{"l5d-client-id", "other"}}, kGetPerson, "prod").ok());
  EXPECT_TRUE(Call(gdpr, kGetPerson, "staging").ok());
  // A third of a minute later one call's worth is back.
  clock_.Advance(absl::Seconds(20));
  EXPECT_TRUE(Call(gdpr, kGetPerson, "prod").ok());
  EXPECT_EQ(Call(gdpr, kGetPerson, "prod").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(AuthorizerTest, ACaptureQuotaCountsEventsAndACallersOwnQuotaWins) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kLinkerd);
  config.authorization.quotas.capture_events_per_second = 100;
  config.authorization.callers[0].quotas = CallerQuotas{60, 120, 10};
  config.authorization.callers.push_back({"bulk", {"prod"}, {"capture"}, {}});
  Start(config);
  const std::vector<std::pair<std::string, std::string>> checkout = {{"l5d-client-id", kChecker}};
  EXPECT_TRUE(Call(checkout, kCapture, "prod", 6).ok());
  grpc::Status status = Call(checkout, kCapture, "prod", 6);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(RetryMillis(status), 200);  // 2 events short at 10 a second.
  // The default quota of another caller: 100 events.
  EXPECT_TRUE(Call({{"l5d-client-id", "bulk"}}, kCapture, "prod", 100).ok());
  EXPECT_EQ(Call({{"l5d-client-id", "bulk"}}, kCapture, "prod", 1).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Flag evaluation spends no quota.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Call(checkout, kEvaluate, "prod").ok());
}

TEST_F(AuthorizerTest, AFlagManagementQuotaAppliesToFlagCalls) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kLinkerd);
  config.authorization.quotas.flag_management_per_minute = 2;
  config.authorization.callers.push_back({"flags-admin", {"prod"}, {"flag_management"}, {}});
  Start(config);
  const std::vector<std::pair<std::string, std::string>> admin = {{"l5d-client-id", "flags-admin"}};
  EXPECT_TRUE(Call(admin, kDeleteFlag, "prod").ok());
  EXPECT_TRUE(Call(admin, kDeleteFlag, "prod").ok());
  grpc::Status status = Call(admin, kDeleteFlag, "prod");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(RetryMillis(status), 30000);
}

TEST(AuthorizationNoticesTest, DevelopmentModeBeyondLoopbackIsLoud) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kNone);
  config.authorization.development_mode = true;
  std::vector<StartupNotice> notices = AuthorizationNotices(config, "0.0.0.0");
  ASSERT_EQ(notices.size(), 3u);
  for (const StartupNotice& notice : notices) {
    EXPECT_TRUE(notice.warning);
    EXPECT_NE(notice.message.find("DEVELOPMENT MODE: NO AUTHORIZATION on 0.0.0.0"),
              std::string::npos);
  }
  for (const char* loopback : {"127.0.0.1", "localhost", "::1"}) {
    notices = AuthorizationNotices(config, loopback);
    ASSERT_EQ(notices.size(), 1u) << loopback;
    EXPECT_FALSE(notices[0].warning);
  }
}

TEST(AuthorizationNoticesTest, AuthorizationWithoutCallersWarnsThatAllIsRefused) {
  GatewayConfig config = TwoProjects(CallerIdentitySource::kIstio);
  EXPECT_TRUE(AuthorizationNotices(config, "0.0.0.0").empty());
  config.authorization.callers.clear();
  std::vector<StartupNotice> notices = AuthorizationNotices(config, "0.0.0.0");
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_TRUE(notices[0].warning);
  EXPECT_NE(notices[0].message.find("every call will be refused"), std::string::npos);
}

}  // namespace
}  // namespace posthog_gateway
