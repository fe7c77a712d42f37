// The audit log through a real gRPC server: a stand-in PersonService behind
// the audit interceptor, records read back from the audit file.

#include "server/authz/audit_log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/person.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/config/config.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

constexpr char kGdpr[] = "spiffe://cluster.local/ns/support/sa/gdpr";
constexpr char kReader[] = "spiffe://cluster.local/ns/support/sa/reader";

// Checks with the authorizer, then answers OK (or NOT_FOUND for the person
// "missing"), as the real service would after PostHog.
class StandInPersons final : public posthog::v1::PersonService::Service {
 public:
  explicit StandInPersons(const Authorizer* authorizer) : authorizer_(authorizer) {}

  grpc::Status DeletePerson(grpc::ServerContext* context,
                            const posthog::v1::DeletePersonRequest* request,
                            posthog::v1::DeletePersonResponse*) override {
    if (grpc::Status denied = authorizer_->Check(*context, "/posthog.v1.PersonService/DeletePerson",
                                                 request->project());
        !denied.ok()) {
      return denied;
    }
    if (request->person().uuid() == "missing") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such person");
    }
    return grpc::Status::OK;
  }
  grpc::Status GetPerson(grpc::ServerContext* context, const posthog::v1::GetPersonRequest* request,
                         posthog::v1::GetPersonResponse*) override {
    return authorizer_->Check(*context, "/posthog.v1.PersonService/GetPerson", request->project());
  }

 private:
  const Authorizer* const authorizer_;
};

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_support::ScratchDir("audit");
    path_ = dir_ + "/audit.jsonl";
    GatewayConfig config;
    ProjectConfig prod;
    prod.alias = "prod";
    ProjectConfig staging;
    staging.alias = "staging";
    config.projects = {prod, staging};
    config.default_project = "prod";
    config.server.caller_identity = CallerIdentitySource::kIstio;
    config.authorization.callers = {
        {kGdpr, {"prod"}, {"persons_read", "persons_write"}, std::nullopt},
        {kReader, {"prod"}, {"persons_read"}, std::nullopt}};
    absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
        Authorizer::Create(config, nullptr, &clock_);
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
    absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    service_ = std::make_unique<StandInPersons>(authorizer_.get());

    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<AuditInterceptorFactory>(authorizer_.get(), log_.get()));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = posthog::v1::PersonService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  grpc::Status Delete(const std::string& caller, const std::string& project,
                      const std::string& uuid) {
    grpc::ClientContext context;
    if (!caller.empty()) {
      context.AddMetadata("x-forwarded-client-cert", absl::StrCat("Hash=1;URI=", caller));
    }
    context.AddMetadata("x-request-id", "req-1");
    posthog::v1::DeletePersonRequest request;
    request.set_project(project);
    request.mutable_person()->set_uuid(uuid);
    posthog::v1::DeletePersonResponse response;
    return stub_->DeletePerson(&context, request, &response);
  }

  // The records written so far (the server shut down first, so every call's
  // record is out).
  std::vector<nlohmann::json> Records() {
    server_->Shutdown();
    server_->Wait();
    server_.reset();
    std::ifstream file(path_);
    std::vector<nlohmann::json> records;
    std::string line;
    while (std::getline(file, line)) records.push_back(nlohmann::json::parse(line));
    return records;
  }

  test_support::FakeClock clock_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<StandInPersons> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<posthog::v1::PersonService::Stub> stub_;
};

TEST_F(AuditLogTest, RecordsEveryDeleteWithCallerProjectTargetAndOutcome) {
  EXPECT_TRUE(Delete(kGdpr, "", "0190f6a1-0000-7000-8000-000000000001").ok());
  EXPECT_EQ(Delete(kGdpr, "prod", "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(kReader, "prod", "u-2").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Delete(kGdpr, "staging", "u-3").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Delete("", "prod", "u-4").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Reads are not audited.
  grpc::ClientContext context;
  context.AddMetadata("x-forwarded-client-cert", absl::StrCat("URI=", kGdpr));
  posthog::v1::GetPersonResponse person;
  EXPECT_TRUE(stub_->GetPerson(&context, posthog::v1::GetPersonRequest(), &person).ok());

  std::vector<nlohmann::json> lines = Records();
  ASSERT_EQ(lines.size(), 5u);
  // Each record is written when its call is torn down, so their order is
  // not the calls' order: keyed by target.
  std::map<std::string, nlohmann::json> records;
  for (const nlohmann::json& line : lines) records[line["target"]] = line;
  nlohmann::json first = records["person uuid 0190f6a1-0000-7000-8000-000000000001"];
  EXPECT_TRUE(first.contains("time"));
  first.erase("time");
  const std::string method = "posthog.v1.PersonService/DeletePerson";
  EXPECT_EQ(first, (nlohmann::json{{"log", "audit"},
                                   {"caller", kGdpr},
                                   {"caller_source", "xfcc"},
                                   {"project", "prod"},
                                   {"method", method},
                                   {"target", "person uuid 0190f6a1-0000-7000-8000-000000000001"},
                                   {"code", "OK"},
                                   {"request_id", "req-1"}}));
  EXPECT_EQ(records["person uuid missing"]["code"], "NotFound");
  EXPECT_EQ(records["person uuid u-2"]["caller"], kReader);
  EXPECT_EQ(records["person uuid u-2"]["code"], "PermissionDenied");
  EXPECT_EQ(records["person uuid u-3"]["project"], "staging");
  EXPECT_EQ(records["person uuid u-3"]["code"], "PermissionDenied");
  EXPECT_EQ(records["person uuid u-4"]["caller"], "");
  EXPECT_FALSE(records["person uuid u-4"].contains("caller_source"));
  EXPECT_EQ(records["person uuid u-4"]["code"], "Unauthenticated");
}

TEST_F(AuditLogTest, TheFileIsPrivateToTheGateway) {
  struct stat info;
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
}

TEST(AuditLogFormatTest, EscapesWhatTheCallerSent) {
  AuditRecord record;
  record.caller = "spiffe://x/y";
  record.target = "person distinct_id a\"b\n{\"log\":\"forged\"}";
  record.code = "OK";
  const std::string line = AuditLog::Format(record, "");
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(nlohmann::json::parse(line)["target"], record.target);
}

TEST(AuditLogOpenTest, AnUnwritablePathIsAStartUpError) {
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open("/nonexistent/dir/audit.jsonl");
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace posthog_gateway
