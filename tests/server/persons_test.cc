#include "server/persons/persons.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/project_registry.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using test_support::FakeClock;
using test_support::FakeHttpClient;

TEST(PersonFromJsonTest, ReadsAListItemWhoseIdIsTheUuid) {
  absl::StatusOr<posthog::v1::Person> person = PersonFromJson(json::parse(R"({
    "type": "person", "id": "0190-uuid", "uuid": "0190-uuid", "name": "ada@example.com",
    "distinct_ids": ["ada", "anon-1"], "properties": {"plan": "pro", "seats": 3},
    "created_at": "2024-05-01T12:30:45.250000Z", "is_identified": true})"));
  ASSERT_TRUE(person.ok()) << person.status();
  EXPECT_EQ(person->uuid(), "0190-uuid");
  EXPECT_EQ(person->id(), 0);
  EXPECT_EQ(person->name(), "ada@example.com");
  EXPECT_EQ(person->distinct_ids_size(), 2);
  EXPECT_EQ(person->distinct_ids(1), "anon-1");
  EXPECT_EQ(person->properties().fields().at("plan").string_value(), "pro");
  EXPECT_EQ(person->properties().fields().at("seats").number_value(), 3);
  EXPECT_EQ(person->create_time().seconds(), 1714566645);
  EXPECT_EQ(person->create_time().nanos(), 250000000);
  EXPECT_TRUE(person->is_identified());
}

TEST(PersonFromJsonTest, ReadsARetrievedPersonWithANumericId) {
  absl::StatusOr<posthog::v1::Person> person =
      PersonFromJson(json::parse(R"({"id": 42, "uuid": "u-42", "name": "x"})"));
  ASSERT_TRUE(person.ok()) << person.status();
  EXPECT_EQ(person->id(), 42);
  EXPECT_EQ(person->uuid(), "u-42");
}

TEST(PersonFromJsonTest, RefusesWhatIsNotAPerson) {
  EXPECT_FALSE(PersonFromJson(json::parse("[1]")).ok());
  EXPECT_FALSE(PersonFromJson(json::parse(R"({"name": "no uuid"})")).ok());
}

TEST(PersonsListQueryTest, EncodesEveryFilter) {
  posthog::v1::ListPersonsRequest request;
  request.set_distinct_id("a b");
  request.set_email("ada@example.com");
  request.set_search("ad&a");
  request.set_cohort_id(9);
  posthog::v1::PropertyFilter* filter = request.add_properties();
  filter->set_key("plan");
  filter->mutable_value()->set_string_value("pro");
  filter->set_operator_(posthog::v1::PROPERTY_OPERATOR_IS_NOT);
  absl::StatusOr<std::string> query = PersonsListQuery(request);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(*query,
            "distinct_id=a%20b&email=ada%40example.com&search=ad%26a&properties="
            "%5B%7B%22key%22%3A%22plan%22%2C%22operator%22%3A%22is_not%22%2C%22type%22%3A%22"
            "person%22%2C%22value%22%3A%22pro%22%7D%5D&cohort=9");
}

TEST(PersonsListQueryTest, UnspecifiedOperatorIsExactAndRawOperatorWins) {
  posthog::v1::ListPersonsRequest request;
  request.add_properties()->set_key("a");
  posthog::v1::PropertyFilter* raw = request.add_properties();
  raw->set_key("b");
  raw->set_operator_(posthog::v1::PROPERTY_OPERATOR_GT);
  raw->set_raw_operator("future_op");
  absl::StatusOr<std::string> query = PersonsListQuery(request);
  ASSERT_TRUE(query.ok());
  EXPECT_NE(query->find("%22exact%22"), std::string::npos) << *query;
  EXPECT_NE(query->find("%22future_op%22"), std::string::npos) << *query;
}

TEST(PersonsListQueryTest, AFilterWithoutKeyIsInvalidArgument) {
  posthog::v1::ListPersonsRequest request;
  request.add_properties();
  EXPECT_EQ(PersonsListQuery(request).status().code(), absl::StatusCode::kInvalidArgument);
}

class PersonsTest : public ::testing::Test {
 protected:
  PersonsTest() {
    config_ = test_support::DemoProjectConfig();
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
  }

  Persons persons() { return Persons(*registry_->Resolve("")); }

  // An update of one person setting two properties, and PostHog's answers
  // to its three requests (two sets, one unset).
  static posthog::v1::PersonRef PersonU1() {
    posthog::v1::PersonRef ref;
    ref.set_uuid("01908d6b-0001-7000-8000-000000000001");
    return ref;
  }
  static google::protobuf::Struct PlanAndSeats() {
    google::protobuf::Struct set;
    (*set.mutable_fields())["plan"].set_string_value("pro");
    (*set.mutable_fields())["seats"].set_number_value(3);
    return set;
  }
  void AnswerAnUpdate() {
    http_.Respond(202, "");
    http_.Respond(202, "");
    http_.Respond(201, R"({"success": true})");
  }

  GatewayConfig config_;
  FakeHttpClient http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
};

TEST_F(PersonsTest, GetByDistinctIdUsesTheListFilter) {
  http_.Respond(200, R"({"results": [{"id": "u-1", "distinct_ids": ["a/b"]}], "next": null})");
  posthog::v1::PersonRef ref;
  ref.set_distinct_id("a/b");
  absl::StatusOr<posthog::v1::Person> person = persons().Get(ref, {});
  ASSERT_TRUE(person.ok()) << person.status();
  EXPECT_EQ(person->uuid(), "u-1");
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].url,
            "https://app.example/api/projects/7/persons/?distinct_id=a%2Fb&limit=1");
}

TEST_F(PersonsTest, GetByUnknownDistinctIdIsNotFound) {
  http_.Respond(200, R"({"results": [], "next": null})");
  posthog::v1::PersonRef ref;
  ref.set_distinct_id("nobody");
  EXPECT_EQ(persons().Get(ref, {}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PersonsTest, GetByNumericIdRetrievesIt) {
  http_.Respond(200, R"({"id": 42, "uuid": "u-42"})");
  posthog::v1::PersonRef ref;
  ref.set_id(42);
  absl::StatusOr<posthog::v1::Person> person = persons().Get(ref, {});
  ASSERT_TRUE(person.ok()) << person.status();
  EXPECT_EQ(person->id(), 42);
  EXPECT_EQ(http_.requests()[0].url, "https://app.example/api/projects/7/persons/42/");
}

TEST_F(PersonsTest, AnEmptyRefIsInvalidArgument) {
  EXPECT_EQ(persons().Get(posthog::v1::PersonRef(), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(PersonsTest, DeleteWithEventsPassesTheFlag) {
  http_.Respond(202, "");
  posthog::v1::PersonRef ref;
  ref.set_uuid("01908d6b-0001-7000-8000-000000000001");
  ASSERT_TRUE(persons().Delete(ref, true, {}).ok());
  EXPECT_EQ(http_.requests()[0].method, "DELETE");
  EXPECT_EQ(http_.requests()[0].url,
            "https://app.example/api/projects/7/persons/01908d6b-0001-7000-8000-000000000001/"
            "?delete_events=true");
}

TEST_F(PersonsTest, UpdateSetsEachKeyThenUnsetsEach) {
  AnswerAnUpdate();
  ASSERT_TRUE(persons().UpdateProperties(PersonU1(), PlanAndSeats(), {"old"}, {}).ok());
  const std::vector<HttpRequest> requests = http_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].url,
            "https://app.example/api/projects/7/persons/01908d6b-0001-7000-8000-000000000001/"
            "update_property/");
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"key": "plan", "value": "pro"})"));
  EXPECT_EQ(json::parse(requests[1].body), json::parse(R"({"key": "seats", "value": 3})"));
  EXPECT_EQ(requests[2].url,
            "https://app.example/api/projects/7/persons/01908d6b-0001-7000-8000-000000000001/"
            "delete_property/");
  EXPECT_EQ(json::parse(requests[2].body), json::parse(R"({"$unset": "old"})"));
}

TEST_F(PersonsTest, EachRequestOfAnUpdateTakesItsTurnOfThePacer) {
  // Room for two requests a minute: the update's third (the unset) would
  // wait past the call's deadline, so it is refused without being sent.
  FakeClock clock;
  RequestPacer pacer({{2, absl::Minutes(1)}}, &clock);
  AnswerAnUpdate();
  CallContext call;
  call.deadline = clock.Now() + absl::Seconds(10);

  const absl::Status status = Persons(*registry_->Resolve(""), &pacer)
                                  .UpdateProperties(PersonU1(), PlanAndSeats(), {"old"}, call);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(http_.requests().size(), 2u);
}

TEST_F(PersonsTest, MoreChangesThanTheLimitAreInvalidArgumentAndSendNothing) {
  google::protobuf::Struct set;
  for (int k = 0; k < 15; ++k) (*set.mutable_fields())[absl::StrCat("p", k)].set_number_value(k);
  std::vector<std::string> unset;
  for (int k = 0; k < 6; ++k) unset.push_back(absl::StrCat("old", k));  // 21 changes.

  const absl::Status status = persons().UpdateProperties(PersonU1(), set, unset, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("more than the 20"), std::string::npos) << status;
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(PersonsTest, AnUpdateStoppedByTheBudgetSaysWhatWasApplied) {
  FakeClock clock;
  RequestPacer pacer({{2, absl::Minutes(1)}}, &clock);
  AnswerAnUpdate();
  CallContext call;
  call.deadline = clock.Now() + absl::Seconds(10);

  const absl::Status status = Persons(*registry_->Resolve(""), &pacer)
                                  .UpdateProperties(PersonU1(), PlanAndSeats(), {"old"}, call);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find(
                "stopped after applying 2 of 3 changes (set plan, set seats); not applied "
                "from \"unset old\""),
            std::string::npos)
      << status;
  EXPECT_TRUE(RetryDelay(status).has_value());  // The budget's details are kept.
}

TEST_F(PersonsTest, ACancelledUpdateStopsBeforeItsNextChangeAndSaysWhatWasApplied) {
  AnswerAnUpdate();
  CallContext call;
  call.is_cancelled = [this] { return !http_.requests().empty(); };  // Gone after one.

  const absl::Status status = persons().UpdateProperties(PersonU1(), PlanAndSeats(), {"old"}, call);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_NE(status.message().find("applying 1 of 3 changes (set plan)"), std::string::npos)
      << status;
  EXPECT_EQ(http_.requests().size(), 1u);
}

TEST_F(PersonsTest, NothingToUpdateIsInvalidArgument) {
  posthog::v1::PersonRef ref;
  ref.set_uuid("01908d6b-0001-7000-8000-000000000001");
  EXPECT_EQ(persons().UpdateProperties(ref, {}, {}, {}).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PersonsTest, AHugeRetryAfterHoldsThePersonsBackTenMinutesAtMost) {
  FakeClock clock;
  RequestPacer pacer({}, &clock);
  Persons paced(*registry_->Resolve(""), &pacer);
  CallContext call;
  call.deadline = absl::InfiniteFuture();
  // 999999 s would be 277 hours without a bound.
  http_.Respond(429, "{}", {{"Retry-After", "999999"}});
  EXPECT_EQ(paced.Delete(PersonU1(), false, call).code(), absl::StatusCode::kResourceExhausted);

  // Within the bound, nothing is sent.
  call.deadline = clock.Now() + kMaxRetryAfter - absl::Seconds(1);
  EXPECT_EQ(paced.Delete(PersonU1(), false, call).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(http_.requests().size(), 1u);

  clock.Advance(kMaxRetryAfter + absl::Seconds(1));
  call.deadline = clock.Now() + absl::Seconds(1);
  http_.Respond(202, "");
  EXPECT_TRUE(paced.Delete(PersonU1(), false, call).ok());
  EXPECT_EQ(http_.requests().size(), 2u);
}

}  // namespace
}  // namespace posthog_gateway
