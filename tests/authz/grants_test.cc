#include "server/authz/grants.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "flagd/evaluation/v2/evaluation.pb.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/group.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/authz/audit_log.h"

namespace posthog_gateway {
namespace {

// Every method of every service of the posthog.v1 API, from the descriptors.
std::set<std::string> ApiMethods() {
  std::set<std::string> methods;
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* file :
       {"posthog/v1/capture.proto", "posthog/v1/flag.proto", "posthog/v1/group.proto",
        "posthog/v1/person.proto", "posthog/v1/user.proto", "posthog/v1/common.proto"}) {
    const google::protobuf::FileDescriptor* descriptor = pool->FindFileByName(file);
    if (descriptor == nullptr) {
      ADD_FAILURE() << file << " is not linked";
      continue;
    }
    for (int s = 0; s < descriptor->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = descriptor->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        methods.insert(absl::StrCat("/", service->full_name(), "/", service->method(m)->name()));
      }
    }
  }
  return methods;
}

TEST(GrantsTest, EveryApiMethodNeedsAGrant) {
  const std::set<std::string> methods = ApiMethods();
  EXPECT_EQ(methods.size(), 25u);
  for (const std::string& method : methods) {
    EXPECT_NE(FindMethodGrant(method), nullptr) << method << " is missing from grants.cc";
  }
}

// OpenFeature's two doors evaluate flags: flagd's methods (from the
// descriptor) and OFREP's two operations need flag_evaluation, as
// EvaluateFlags does, and nothing more.
TEST(GrantsTest, FlagdMethodsAndOfrepOperationsNeedFlagEvaluation) {
  const google::protobuf::FileDescriptor* flagd =
      google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
          "flagd/evaluation/v2/evaluation.proto");
  ASSERT_NE(flagd, nullptr);
  ASSERT_EQ(flagd->service_count(), 1);
  const google::protobuf::ServiceDescriptor* service = flagd->service(0);
  EXPECT_EQ(service->method_count(), 7);
  for (int m = 0; m < service->method_count(); ++m) {
    const std::string method =
        absl::StrCat("/", service->full_name(), "/", service->method(m)->name());
    const MethodGrant* entry = FindMethodGrant(method);
    ASSERT_NE(entry, nullptr) << method << " is missing from grants.cc";
    EXPECT_EQ(entry->grant, kGrantFlagEvaluation) << method;
  }
  for (absl::string_view operation : {kOfrepEvaluateFlag, kOfrepEvaluateFlags}) {
    const MethodGrant* entry = FindMethodGrant(operation);
    ASSERT_NE(entry, nullptr) << operation;
    EXPECT_EQ(entry->grant, kGrantFlagEvaluation);
  }
}

TEST(GrantsTest, EveryTableEntryIsARealMethodWithAKnownGrant) {
  const std::set<std::string> methods = ApiMethods();
  std::set<std::string> seen;
  for (const MethodGrant& entry : MethodGrants()) {
    EXPECT_TRUE(seen.insert(std::string(entry.method)).second) << entry.method << " twice";
    EXPECT_NE(FindGrant(entry.grant), nullptr) << entry.method;
    if (absl::StartsWith(entry.method, "/posthog.v1.")) {
      EXPECT_EQ(methods.count(std::string(entry.method)), 1u) << entry.method;
    }
  }
}

TEST(GrantsTest, WritesAndDeletesNeedTheirOwnGrantsAndAreAudited) {
  const std::set<std::string> audited = {"/posthog.v1.FlagService/CreateFlag",
                                         "/posthog.v1.FlagService/UpdateFlag",
                                         "/posthog.v1.FlagService/DeleteFlag",
                                         "/posthog.v1.PersonService/DeletePerson",
                                         "/posthog.v1.PersonService/UpdatePersonProperties",
                                         "/posthog.v1.GroupService/CreateGroup",
                                         "/posthog.v1.GroupService/UpdateGroupProperties"};
  for (const MethodGrant& entry : MethodGrants()) {
    EXPECT_EQ(entry.audited, audited.count(std::string(entry.method)) == 1) << entry.method;
  }
  EXPECT_EQ(FindMethodGrant("/posthog.v1.PersonService/DeletePerson")->grant, kGrantPersonsWrite);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.PersonService/GetPerson")->grant, kGrantPersonsRead);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.FlagService/DeleteFlag")->grant, kGrantFlagManagement);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.FlagService/EvaluateFlags")->grant, kGrantFlagEvaluation);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.UserService/GetCurrentUser")->grant, kGrantUser);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.GroupService/ListGroups")->grant, kGrantGroupsRead);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.GroupService/CreateGroup")->grant, kGrantGroupsWrite);
  EXPECT_EQ(FindGrant(kGrantGroupsWrite)->quota, QuotaKind::kPersons);
  EXPECT_EQ(FindMethodGrant("/posthog.v1.CaptureService/StreamCaptureEvents")->grant,
            kGrantCapture);
}

TEST(GrantsTest, UnknownMethodsAndGrantsAreNotFound) {
  EXPECT_EQ(FindMethodGrant("/posthog.v1.PersonService/Exfiltrate"), nullptr);
  EXPECT_EQ(FindMethodGrant("posthog.v1.PersonService/DeletePerson"), nullptr);  // No '/'.
  EXPECT_EQ(FindGrant("admin"), nullptr);
}

// The audit log reads each audited method's request: each needs a reader.
TEST(GrantsTest, EveryAuditedMethodNamesItsTarget) {
  posthog::v1::DeletePersonRequest delete_person;
  delete_person.set_project("prod");
  delete_person.mutable_person()->set_uuid("0190f6a1-0000-7000-8000-000000000001");
  AuditSubject subject = AuditSubjectOf("/posthog.v1.PersonService/DeletePerson", &delete_person);
  EXPECT_EQ(subject.project, "prod");
  EXPECT_EQ(subject.target, "person uuid 0190f6a1-0000-7000-8000-000000000001");

  posthog::v1::UpdatePersonPropertiesRequest update_person;
  update_person.mutable_person()->set_distinct_id("user-7");
  EXPECT_EQ(
      AuditSubjectOf("/posthog.v1.PersonService/UpdatePersonProperties", &update_person).target,
      "person distinct_id user-7");

  posthog::v1::CreateFlagRequest create_flag;
  create_flag.mutable_flag()->set_key("new-checkout");
  EXPECT_EQ(AuditSubjectOf("/posthog.v1.FlagService/CreateFlag", &create_flag).target,
            "flag key new-checkout");
  posthog::v1::UpdateFlagRequest update_flag;
  update_flag.mutable_flag()->set_id(42);
  update_flag.mutable_flag()->set_key("beta");
  EXPECT_EQ(AuditSubjectOf("/posthog.v1.FlagService/UpdateFlag", &update_flag).target,
            "flag id 42 key beta");
  posthog::v1::DeleteFlagRequest delete_flag;
  delete_flag.set_id(7);
  EXPECT_EQ(AuditSubjectOf("/posthog.v1.FlagService/DeleteFlag", &delete_flag).target, "flag id 7");
  posthog::v1::CreateGroupRequest create_group;
  create_group.set_project("prod");
  create_group.set_group_type_index(1);
  create_group.set_group_key("acme");
  subject = AuditSubjectOf("/posthog.v1.GroupService/CreateGroup", &create_group);
  EXPECT_EQ(subject.project, "prod");
  EXPECT_EQ(subject.target, "group type 1 key acme");
  posthog::v1::UpdateGroupPropertiesRequest update_group;
  update_group.set_group_key(std::string(10000, 'x'));
  EXPECT_LE(
      AuditSubjectOf("/posthog.v1.GroupService/UpdateGroupProperties", &update_group).target.size(),
      260u);

  for (const MethodGrant& entry : MethodGrants()) {
    if (!entry.audited) continue;
    // Every audited method is one of those above (a new one needs a reader).
    EXPECT_TRUE(entry.method == "/posthog.v1.PersonService/DeletePerson" ||
                entry.method == "/posthog.v1.PersonService/UpdatePersonProperties" ||
                entry.method == "/posthog.v1.FlagService/CreateFlag" ||
                entry.method == "/posthog.v1.FlagService/UpdateFlag" ||
                entry.method == "/posthog.v1.FlagService/DeleteFlag" ||
                entry.method == "/posthog.v1.GroupService/CreateGroup" ||
                entry.method == "/posthog.v1.GroupService/UpdateGroupProperties")
        << entry.method;
  }
}

TEST(GrantsTest, AuditTargetsAreBounded) {
  posthog::v1::DeletePersonRequest request;
  request.mutable_person()->set_distinct_id(std::string(10000, 'x'));
  EXPECT_LE(AuditSubjectOf("/posthog.v1.PersonService/DeletePerson", &request).target.size(), 260u);
}

}  // namespace
}  // namespace posthog_gateway
