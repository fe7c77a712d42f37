#include "server/groups/groups.h"

#include <memory>

#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "server/posthog/personal_key_routes.h"
#include "server/posthog/project_registry.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using test_support::FakeHttpClient;

TEST(GroupFromJsonTest, ReadsAListItem) {
  absl::StatusOr<posthog::v1::Group> group = GroupFromJson(json::parse(R"({
    "group_type_index": 1, "group_key": "acme", "group_properties": {"plan": "pro"},
    "created_at": "2024-05-01T12:30:45.250000Z"})"));
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(group->group_type_index(), 1);
  EXPECT_EQ(group->group_key(), "acme");
  EXPECT_EQ(group->group_properties().fields().at("plan").string_value(), "pro");
  EXPECT_EQ(group->create_time().seconds(), 1714566645);
}

TEST(GroupFromJsonTest, RefusesWhatIsNotAGroup) {
  EXPECT_FALSE(GroupFromJson(json::parse("[1]")).ok());
  EXPECT_FALSE(GroupFromJson(json::parse(R"({"group_key": "a"})")).ok());
  EXPECT_FALSE(GroupFromJson(json::parse(R"({"group_type_index": "0", "group_key": "a"})")).ok());
}

TEST(GroupsListQueryTest, EncodesTheTypeAndFilters) {
  posthog::v1::ListGroupsRequest request;
  request.set_group_type_index(2);
  request.set_group_key("ac&me");
  request.set_search("a b");
  absl::StatusOr<std::string> query = GroupsListQuery(request);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(*query, "group_type_index=2&group_key=ac%26me&search=a%20b");
}

TEST(GroupsListQueryTest, RefusesATypeIndexOutsideZeroToFour) {
  for (int index : {-1, 5, 1 << 30}) {
    posthog::v1::ListGroupsRequest request;
    request.set_group_type_index(index);
    absl::StatusOr<std::string> query = GroupsListQuery(request);
    EXPECT_EQ(query.status().code(), absl::StatusCode::kInvalidArgument) << index;
  }
}

TEST(GroupRoutesTest, ThePersonalKeyReachesTheGroupsRoutesOnly) {
  for (const char* target :
       {"/api/projects/7/groups/?group_type_index=0", "/api/projects/7/groups_types/",
        "/api/projects/7/groups/find/?group_type_index=0&group_key=a"}) {
    absl::StatusOr<UpstreamUrl> url = ParseUpstreamTarget(target);
    ASSERT_TRUE(url.ok()) << target;
    EXPECT_TRUE(MatchPersonalKeyRoute("GET", *url, 7).has_value()) << target;
    EXPECT_FALSE(MatchPersonalKeyRoute("DELETE", *url, 7).has_value()) << target;
    EXPECT_FALSE(MatchPersonalKeyRoute("GET", *url, 8).has_value()) << target;
  }
  for (const char* target : {"/api/projects/7/groups/", "/api/projects/7/groups/update_property/",
                             "/api/projects/7/groups/delete_property/"}) {
    absl::StatusOr<UpstreamUrl> url = ParseUpstreamTarget(target);
    ASSERT_TRUE(url.ok()) << target;
    EXPECT_TRUE(MatchPersonalKeyRoute("POST", *url, 7).has_value()) << target;
  }
  absl::StatusOr<UpstreamUrl> other = ParseUpstreamTarget("/api/projects/7/groups/acme/");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(MatchPersonalKeyRoute("GET", *other, 7).has_value());
}

class GroupsTest : public ::testing::Test {
 protected:
  GroupsTest() {
    config_ = test_support::DemoProjectConfig();
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
  }
  Groups groups() { return Groups(*registry_->Resolve("")); }

  FakeHttpClient http_;
  GatewayConfig config_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
};

TEST_F(GroupsTest, GetFindsTheGroupWithItsKeyEncodedInTheQuery) {
  http_.Respond(200, R"({"group_type_index": 0, "group_key": "a/b?c", "group_properties": {}})");
  absl::StatusOr<posthog::v1::Group> group = groups().Get(0, "a/b?c", {});
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(group->group_key(), "a/b?c");
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].url,
            "https://app.example/api/projects/7/groups/find/"
            "?group_type_index=0&group_key=a%2Fb%3Fc");
}

TEST_F(GroupsTest, BadNamesAreInvalidArgumentAndSendNothing) {
  EXPECT_EQ(groups().Get(5, "a", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(groups().Get(-1, "a", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(groups().Get(0, "", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(groups().Get(0, std::string(401, 'k'), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(groups().Get(0, std::string("a\0b", 3), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(groups().Create(9, "a", {}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  google::protobuf::Struct set;
  (*set.mutable_fields())["plan"].set_string_value("pro");
  EXPECT_EQ(groups().UpdateProperties(0, "", set, {}, {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(GroupsTest, CreateSendsTheGroupAndATakenKeyIsAlreadyExists) {
  http_.Respond(201,
                R"({"group_type_index": 1, "group_key": "acme", "group_properties": {"n": 1}})");
  google::protobuf::Struct properties;
  (*properties.mutable_fields())["n"].set_number_value(1);
  absl::StatusOr<posthog::v1::Group> created = groups().Create(1, "acme", properties, {});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->group_key(), "acme");
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].method, "POST");
  EXPECT_EQ(http_.requests()[0].url, "https://app.example/api/projects/7/groups/");
  EXPECT_EQ(json::parse(http_.requests()[0].body),
            json::parse(R"({"group_type_index": 1, "group_key": "acme",
                            "group_properties": {"n": 1.0}})"));
  http_.Respond(400, R"({"type": "validation_error", "code": "invalid_input",
                         "detail": "A group with this key already exists", "attr": "detail"})");
  absl::Status taken = groups().Create(1, "acme", properties, {}).status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists) << taken;
  EXPECT_EQ(ErrorInfoReason(taken), "UPSTREAM_ALREADY_EXISTS");
}

TEST_F(GroupsTest, UpdateSetsThenUnsetsOneRequestEach) {
  for (int i = 0; i < 3; ++i) http_.Respond(200, R"({"group_type_index": 0, "group_key": "a"})");
  google::protobuf::Struct set;
  (*set.mutable_fields())["z"].set_bool_value(true);
  (*set.mutable_fields())["a"].set_string_value("x");
  ASSERT_TRUE(groups().UpdateProperties(0, "a", set, {"old"}, {}).ok());
  const std::vector<HttpRequest> requests = http_.requests();
  ASSERT_EQ(requests.size(), 3u);
  const std::string update =
      "https://app.example/api/projects/7/groups/update_property/?group_type_index=0&group_key=a";
  EXPECT_EQ(requests[0].url, update);
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"key": "a", "value": "x"})"));
  EXPECT_EQ(json::parse(requests[1].body), json::parse(R"({"key": "z", "value": true})"));
  EXPECT_EQ(requests[2].url,
            "https://app.example/api/projects/7/groups/delete_property/"
            "?group_type_index=0&group_key=a");
  EXPECT_EQ(json::parse(requests[2].body), json::parse(R"({"$unset": "old"})"));
}

TEST_F(GroupsTest, APartialUpdateNamesWhatWasApplied) {
  http_.Respond(200, R"({"group_type_index": 0, "group_key": "a"})");
  http_.Respond(404, R"({"detail": "Not found."})");
  google::protobuf::Struct set;
  (*set.mutable_fields())["a"].set_string_value("x");
  absl::Status status = groups().UpdateProperties(0, "a", set, {"b"}, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("applying 1 of 2 changes (set a)"), absl::string_view::npos)
      << status;
}

TEST_F(GroupsTest, ListTypesReadsEveryType) {
  http_.Respond(200, R"([{"group_type": "company", "group_type_index": 0,
                          "name_singular": "Company", "name_plural": null},
                         {"group_type": "project", "group_type_index": 1}])");
  absl::StatusOr<std::vector<posthog::v1::GroupType>> types = groups().ListTypes({});
  ASSERT_TRUE(types.ok()) << types.status();
  ASSERT_EQ(types->size(), 2u);
  EXPECT_EQ((*types)[0].name_singular(), "Company");
  EXPECT_EQ((*types)[1].group_type(), "project");
  EXPECT_EQ(http_.requests()[0].url, "https://app.example/api/projects/7/groups_types/");
}

}  // namespace
}  // namespace posthog_gateway
