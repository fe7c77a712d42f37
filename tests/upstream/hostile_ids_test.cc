// Hostile ids through the real gRPC services (persons, flags, user) and the
// real libcurl client to a raw HTTP listener on loopback playing PostHog.
//
// Every id field of every RPC is sent with dot segments, encoded dot
// segments, slashes, query and fragment characters, NUL, CR/LF and 10 KB
// strings. The listener records each request's method and target exactly as
// they arrived, and the test asserts that
// - every request that reached "PostHog" is one of the routes the RPCs need
//   (the allow-list below, kept here independently of the gateway's own), with
//   the personal key only on the routes that need it;
// - a bad path id is INVALID_ARGUMENT with a BadRequest naming the field, and
//   nothing was sent for it;
// - a value PostHog searches for (a distinct id, a list filter) is sent
//   encoded in the query, never in the path.

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"
#include "re2/re2.h"
#include "server/common/clock.h"
#include "server/config/key_store.h"
#include "server/http/curl_http_client.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "server/service/person_service.h"
#include "server/service/user_service.h"
#include "tests/fakes/grpc_status_details.h"
#include "tests/upstream/raw_http_listener.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::RawAnswer;
using test_support::RawHttpListener;
using test_support::RawRequest;
using test_support::ViolatedFields;

constexpr char kPersonalKey[] = "phx_personal_hostile";
constexpr char kProjectKey[] = "phc_project_hostile";
constexpr char kUuid[] = "01908d6b-0002-7000-8000-000000000002";

// The routes the RPCs under test need, as PostHog's (method, path) with
// {uuid} a UUID and {id} a positive integer; project 7 only.
struct Route {
  const char* method;
  const char* path_pattern;  // RE2, whole path (no query).
  bool personal_key;
};
constexpr char kUuidRe[] =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    "[0-9a-fA-F]{12}";
const std::vector<Route>& AllowedRoutes() {
  static const std::vector<Route>* routes = [] {
    const std::string person = absl::StrCat("(", kUuidRe, "|[1-9][0-9]*)");
    static const std::string persons = "/api/projects/7/persons/";
    static const std::string one = absl::StrCat(persons, person, "/");
    static const std::string update = absl::StrCat(one, "update_property/");
    static const std::string remove = absl::StrCat(one, "delete_property/");
    return new std::vector<Route>{
        {"GET", "/api/users/@me/", true},
        {"GET", persons.c_str(), true},
        {"GET", one.c_str(), true},
        {"DELETE", one.c_str(), true},
        {"POST", update.c_str(), true},
        {"POST", remove.c_str(), true},
        {"GET", "/api/projects/7/feature_flags/", true},
        {"POST", "/api/projects/7/feature_flags/", true},
        {"GET", "/api/projects/7/feature_flags/[1-9][0-9]*/", true},
        {"PATCH", "/api/projects/7/feature_flags/[1-9][0-9]*/", true},
        {"POST", "/flags/", false},
    };
  }();
  return *routes;
}

// Whether `request` is on the allow-list; `why` says what is wrong if not.
bool Allowed(const RawRequest& request, std::string* why) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const bool with_key = request.authorization == absl::StrCat("Bearer ", kPersonalKey);
  for (const Route& route : AllowedRoutes()) {
    if (request.method != route.method || !RE2::FullMatch(path, route.path_pattern)) continue;
    if (with_key && !route.personal_key) {
      *why = "carries the personal key on a public route";
      return false;
    }
    return true;
  }
  *why = with_key ? "is not on the allow-list and carries the personal key"
                  : "is not on the allow-list";
  return false;
}

// The strings an attacker tries in every id field.
std::vector<std::string> HostileStrings() {
  std::vector<std::string> values = {
      ".",
      "..",
      "%2e%2e",
      "%2E%2E",
      ".%2e",
      "/",
      "../..",
      "../../..",
      "a/../..",
      "?",
      "?delete_events=true",
      "#",
      "#x",
      std::string("a\0b", 3),
      std::string(1, '\0'),
      "\r\n",
      "x\r\nHost: evil.example",
      "%00",
      "%2f",
      "@me",
      " ",
      "\\..\\..",
      std::string(10 * 1024, 'a'),
  };
  std::string dots;
  while (dots.size() < 10 * 1024) dots += "../";
  values.push_back(dots);
  return values;
}

// Printable, bounded name of a hostile value for failure messages.
std::string Printable(const std::string& value) {
  std::string out;
  for (unsigned char c : value.substr(0, 24)) {
    out += (c < 0x20 || c >= 0x7f) ? absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2))
                                   : std::string(1, static_cast<char>(c));
  }
  if (value.size() > 24) absl::StrAppend(&out, "...(", value.size(), " bytes)");
  return out;
}

class HostileIdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const int port = listener_.Start([this](const RawRequest& request) { return Answer(request); });
    ASSERT_GT(port, 0);
    const std::string host = absl::StrCat("http://127.0.0.1:", port);
    for (const char* alias : {"demo", "other"}) {
      ProjectConfig project;
      project.alias = alias;
      project.project_id = alias == std::string("demo") ? 7 : 8;
      project.ingestion_host = host;
      project.app_host = host;
      project.project_api_key.env = "PHC";
      project.personal_api_key.env = "PHX";
      config_.projects.push_back(project);
    }
    config_.default_project = "demo";
    keys_ = std::make_unique<KeyStore>(config_, [](const std::string& name) {
      return std::optional<std::string>(name == "PHC" ? kProjectKey : kPersonalKey);
    });
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    PagingConfig paging;
    paging.persons_per_minute = 1000000;
    paging.persons_per_hour = 1000000;
    paging.flags_per_minute = 1000000;
    paging.flags_per_hour = 1000000;
    persons_ = std::make_unique<PersonServiceImpl>(registry_.get(), paging, &tokens_, RealClock());
    flags_ = std::make_unique<FlagServiceImpl>(
        registry_.get(),
        std::map<std::string, FlagProject>{{"demo", FlagProject{}}, {"other", FlagProject{}}},
        FlagsConfig{}, paging, &tokens_, RealClock());
    users_ = std::make_unique<UserServiceImpl>(registry_.get());
    grpc::ServerBuilder builder;
    builder.RegisterService(persons_.get());
    builder.RegisterService(flags_.get());
    builder.RegisterService(users_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = server_->InProcessChannel(grpc::ChannelArguments());
    person_stub_ = v1::PersonService::NewStub(channel);
    flag_stub_ = v1::FlagService::NewStub(channel);
    user_stub_ = v1::UserService::NewStub(channel);
  }

  void TearDown() override {
    server_->Shutdown();
    flags_->Shutdown();
    listener_.Stop();
  }

  // One answer that every RPC can read: a person, a flag, a page of one
  // person, a /flags answer. `person_uuid_` is what a distinct-id lookup
  // finds (a hostile PostHog may send anything there).
  RawAnswer Answer(const RawRequest& request) {
    RawAnswer answer;
    if (request.method == "DELETE") {
      answer.status = 202;
      return answer;
    }
    const std::string person =
        absl::StrCat(R"({"type": "person", "id": ")", person_uuid_, R"(", "uuid": ")", person_uuid_,
                     R"(", "distinct_ids": ["d"], "properties": {}})");
    if (absl::StrContains(request.target, "distinct_id=")) {
      answer.body = absl::StrCat(R"({"results": [)", person, R"(], "next": null})");
    } else if (absl::StartsWith(request.target, "/flags/")) {
      answer.body = R"({"flags": {}, "requestId": "r"})";
    } else if (absl::StrContains(request.target, "/feature_flags/")) {
      answer.body = R"({"id": 12, "key": "beta", "name": "Beta", "active": true,
        "deleted": false, "version": 3, "filters": {"groups": []}, "results": [], "next": null,
        "count": 0})";
    } else if (absl::StrContains(request.target, "/persons/?")) {
      answer.body = R"({"results": [], "next": null})";
    } else {
      answer.body = absl::StrCat(R"({"id": 1, "uuid": ")", kUuid,
                                 R"(", "distinct_ids": ["d"], "properties": {}})");
    }
    return answer;
  }

  static void WithDeadline(grpc::ClientContext* context) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  }

  grpc::Status GetPerson(const v1::PersonRef& ref, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::GetPersonRequest request;
    request.set_project(project);
    *request.mutable_person() = ref;
    v1::GetPersonResponse response;
    return person_stub_->GetPerson(&context, request, &response);
  }

  grpc::Status DeletePerson(const v1::PersonRef& ref, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::DeletePersonRequest request;
    request.set_project(project);
    *request.mutable_person() = ref;
    request.set_delete_events(true);
    v1::DeletePersonResponse response;
    return person_stub_->DeletePerson(&context, request, &response);
  }

  grpc::Status UpdatePerson(const v1::PersonRef& ref, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::UpdatePersonPropertiesRequest request;
    request.set_project(project);
    *request.mutable_person() = ref;
    (*request.mutable_set()->mutable_fields())["plan"].set_string_value("pro");
    request.add_unset("old");
    v1::UpdatePersonPropertiesResponse response;
    return person_stub_->UpdatePersonProperties(&context, request, &response);
  }

  grpc::Status ListPersons(const v1::ListPersonsRequest& request) {
    grpc::ClientContext context;
    WithDeadline(&context);
    auto reader = person_stub_->ListPersons(&context, request);
    v1::ListPersonsResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }

  grpc::Status ListFlags(const std::string& project) {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::ListFlagsRequest request;
    request.set_project(project);
    auto reader = flag_stub_->ListFlags(&context, request);
    v1::ListFlagsResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }

  grpc::Status GetFlag(int64_t id, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::GetFlagRequest request;
    request.set_project(project);
    request.set_id(id);
    v1::GetFlagResponse response;
    return flag_stub_->GetFlag(&context, request, &response);
  }

  grpc::Status DeleteFlag(int64_t id, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::DeleteFlagRequest request;
    request.set_project(project);
    request.set_id(id);
    v1::DeleteFlagResponse response;
    return flag_stub_->DeleteFlag(&context, request, &response);
  }

  grpc::Status UpdateFlag(int64_t id, const std::string& key, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::UpdateFlagRequest request;
    request.set_project(project);
    request.mutable_flag()->set_id(id);
    request.mutable_flag()->set_key(key);
    request.mutable_update_mask()->add_paths("key");
    v1::UpdateFlagResponse response;
    return flag_stub_->UpdateFlag(&context, request, &response);
  }

  grpc::Status CreateFlag(const std::string& key, const std::string& project = "") {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::CreateFlagRequest request;
    request.set_project(project);
    request.mutable_flag()->set_key(key);
    v1::CreateFlagResponse response;
    return flag_stub_->CreateFlag(&context, request, &response);
  }

  grpc::Status EvaluateFlag(const std::string& key, const std::string& distinct_id,
                            const std::string& project = "",
                            v1::EvaluateFlagResponse* response = nullptr) {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::EvaluateFlagRequest request;
    request.set_project(project);
    request.set_key(key);
    request.mutable_context()->set_distinct_id(distinct_id);
    v1::EvaluateFlagResponse ignored;
    return flag_stub_->EvaluateFlag(&context, request, response ? response : &ignored);
  }

  grpc::Status GetCurrentUser(const std::string& project) {
    grpc::ClientContext context;
    WithDeadline(&context);
    v1::GetCurrentUserRequest request;
    request.set_project(project);
    v1::GetCurrentUserResponse response;
    return user_stub_->GetCurrentUser(&context, request, &response);
  }

  // Asserts that every request so far stayed on the allow-list.
  void ExpectOnlyAllowedRequests() {
    for (const RawRequest& request : listener_.requests()) {
      std::string why;
      EXPECT_TRUE(Allowed(request, &why))
          << request.method << " " << Printable(request.target) << " " << why;
    }
  }

  // Asserts `status` is INVALID_ARGUMENT naming `field`, and that nothing
  // reached PostHog for it.
  void ExpectRefused(const grpc::Status& status, const std::string& field,
                     const std::string& what) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << status.error_message().substr(0, 200);
    EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{field}) << what;
    EXPECT_EQ(listener_.requests().size(), 0u) << what << " reached PostHog";
    ExpectOnlyAllowedRequests();
    listener_.Clear();
  }

  GatewayConfig config_;
  RawHttpListener listener_;
  CurlHttpClient http_{CurlHttpClientOptions{}};
  std::string person_uuid_ = kUuid;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<PersonServiceImpl> persons_;
  std::unique_ptr<FlagServiceImpl> flags_;
  std::unique_ptr<UserServiceImpl> users_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::PersonService::Stub> person_stub_;
  std::unique_ptr<v1::FlagService::Stub> flag_stub_;
  std::unique_ptr<v1::UserService::Stub> user_stub_;
};

TEST_F(HostileIdsTest, AHostilePersonUuidIsRefusedBeforeAnyRequest) {
  for (const std::string& value : HostileStrings()) {
    v1::PersonRef ref;
    ref.set_uuid(value);
    const std::string what = absl::StrCat("uuid \"", Printable(value), "\"");
    ExpectRefused(GetPerson(ref), "person.uuid", absl::StrCat("GetPerson ", what));
    ExpectRefused(DeletePerson(ref), "person.uuid", absl::StrCat("DeletePerson ", what));
    ExpectRefused(UpdatePerson(ref), "person.uuid", absl::StrCat("UpdatePersonProperties ", what));
  }
  // Not a UUID either, though harmless in a path.
  for (const std::string& value : {std::string("0190-uuid"), std::string("abc"),
                                   absl::StrCat(kUuid, "0"), absl::StrCat(kUuid, "/")}) {
    v1::PersonRef ref;
    ref.set_uuid(value);
    ExpectRefused(DeletePerson(ref), "person.uuid", absl::StrCat("DeletePerson ", value));
  }
}

TEST_F(HostileIdsTest, ANonPositivePersonIdIsRefusedBeforeAnyRequest) {
  for (int64_t id : {int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    v1::PersonRef ref;
    ref.set_id(id);
    ExpectRefused(GetPerson(ref), "person.id", absl::StrCat("GetPerson id ", id));
    ExpectRefused(DeletePerson(ref), "person.id", absl::StrCat("DeletePerson id ", id));
    ExpectRefused(UpdatePerson(ref), "person.id", absl::StrCat("Update id ", id));
  }
}

TEST_F(HostileIdsTest, ValidPersonIdsReachOnlyTheirOwnRoutes) {
  v1::PersonRef by_uuid;
  by_uuid.set_uuid(kUuid);
  v1::PersonRef by_id;
  by_id.set_id(std::numeric_limits<int64_t>::max());
  for (const v1::PersonRef& ref : {by_uuid, by_id}) {
    EXPECT_TRUE(GetPerson(ref).ok());
    EXPECT_TRUE(DeletePerson(ref).ok());
    EXPECT_TRUE(UpdatePerson(ref).ok());
  }
  const std::vector<RawRequest> requests = listener_.requests();
  ASSERT_EQ(requests.size(), 8u);
  EXPECT_EQ(requests[0].target, absl::StrCat("/api/projects/7/persons/", kUuid, "/"));
  EXPECT_EQ(requests[1].target,
            absl::StrCat("/api/projects/7/persons/", kUuid, "/?delete_events=true"));
  EXPECT_EQ(requests[4].target, "/api/projects/7/persons/9223372036854775807/");
  ExpectOnlyAllowedRequests();
}

TEST_F(HostileIdsTest, AHostileDistinctIdStaysInTheQuery) {
  for (const std::string& value : HostileStrings()) {
    v1::PersonRef ref;
    ref.set_distinct_id(value);
    const std::string what = absl::StrCat("distinct_id \"", Printable(value), "\"");
    EXPECT_TRUE(GetPerson(ref).ok()) << what;
    EXPECT_TRUE(DeletePerson(ref).ok()) << what;
    EXPECT_TRUE(UpdatePerson(ref).ok()) << what;
    ExpectOnlyAllowedRequests();
    for (const RawRequest& request : listener_.requests()) {
      // The lookup carries the distinct id in its query, the writes the
      // uuid PostHog found.
      EXPECT_TRUE(
          absl::StartsWith(request.target, "/api/projects/7/persons/?distinct_id=") ||
          absl::StartsWith(request.target, absl::StrCat("/api/projects/7/persons/", kUuid, "/")))
          << what << ": " << Printable(request.target);
    }
    listener_.Clear();
  }
}

TEST_F(HostileIdsTest, AHostileUuidFromPostHogIsNotFollowed) {
  // A PostHog (or a proxy in between) answering a distinct-id lookup with a
  // uuid that climbs out of the persons route.
  for (const std::string& value : {std::string(".."), std::string("../.."), std::string("%2e%2e"),
                                   std::string("x/../../..")}) {
    person_uuid_ = value;
    v1::PersonRef ref;
    ref.set_distinct_id("ada");
    EXPECT_EQ(DeletePerson(ref).error_code(), grpc::StatusCode::UNAVAILABLE) << value;
    EXPECT_EQ(UpdatePerson(ref).error_code(), grpc::StatusCode::UNAVAILABLE) << value;
    const std::vector<RawRequest> requests = listener_.requests();
    ASSERT_EQ(requests.size(), 2u) << value << ": only the two lookups";
    for (const RawRequest& request : requests) EXPECT_EQ(request.method, "GET") << value;
    ExpectOnlyAllowedRequests();
    listener_.Clear();
  }
}

TEST_F(HostileIdsTest, HostileListFiltersStayInTheQuery) {
  for (const std::string& value : HostileStrings()) {
    const std::string what = absl::StrCat("filter \"", Printable(value), "\"");
    v1::ListPersonsRequest request;
    request.set_distinct_id(value);
    request.set_email(value);
    request.set_search(value);
    request.add_properties()->set_key(value);
    EXPECT_TRUE(ListPersons(request).ok()) << what;
    const std::vector<RawRequest> requests = listener_.requests();
    ASSERT_EQ(requests.size(), 1u) << what;
    EXPECT_TRUE(absl::StartsWith(requests[0].target, "/api/projects/7/persons/?")) << what;
    ExpectOnlyAllowedRequests();
    listener_.Clear();
  }
  v1::ListPersonsRequest negative_cohort;
  negative_cohort.set_cohort_id(-1);
  ExpectRefused(ListPersons(negative_cohort), "cohort_id", "cohort_id -1");
}

TEST_F(HostileIdsTest, HostileFlagIdsAndKeysAreRefusedBeforeAnyRequest) {
  for (int64_t id : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    ExpectRefused(GetFlag(id), "id", absl::StrCat("GetFlag ", id));
    ExpectRefused(DeleteFlag(id), "id", absl::StrCat("DeleteFlag ", id));
    ExpectRefused(UpdateFlag(id, "beta"), "flag.id", absl::StrCat("UpdateFlag ", id));
  }
  for (const std::string& value : HostileStrings()) {
    const std::string what = absl::StrCat("key \"", Printable(value), "\"");
    ExpectRefused(CreateFlag(value), "flag.key", absl::StrCat("CreateFlag ", what));
    ExpectRefused(UpdateFlag(12, value), "flag.key", absl::StrCat("UpdateFlag ", what));
  }
  EXPECT_TRUE(GetFlag(std::numeric_limits<int64_t>::max()).ok());
  EXPECT_TRUE(CreateFlag("beta-2_x").ok());
  ExpectOnlyAllowedRequests();
}

TEST_F(HostileIdsTest, HostileEvaluationKeysGoOnlyInTheBodyOfFlags) {
  for (const std::string& value : HostileStrings()) {
    const std::string what = absl::StrCat("key \"", Printable(value), "\"");
    v1::EvaluateFlagResponse response;
    const grpc::Status status = EvaluateFlag(value, value, "", &response);
    EXPECT_TRUE(status.ok()) << what << ": " << status.error_message().substr(0, 200);
    EXPECT_EQ(response.result().error_code(), v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND) << what;
    for (const RawRequest& request : listener_.requests()) {
      EXPECT_EQ(request.target, "/flags/?v=2") << what;
      EXPECT_EQ(request.authorization, "") << what;
    }
    ExpectOnlyAllowedRequests();
    listener_.Clear();
  }
}

TEST_F(HostileIdsTest, AHostileProjectIsRefusedWithoutListingTheConfiguredOnes) {
  std::vector<std::string> values = HostileStrings();
  values.push_back("prod");
  for (const std::string& project : values) {
    const std::string what = absl::StrCat("project \"", Printable(project), "\"");
    v1::PersonRef ref;
    ref.set_uuid(kUuid);
    v1::ListPersonsRequest list;
    list.set_project(project);
    const std::vector<grpc::Status> statuses = {
        GetPerson(ref, project),     DeletePerson(ref, project),
        UpdatePerson(ref, project),  ListPersons(list),
        ListFlags(project),          GetFlag(12, project),
        DeleteFlag(12, project),     UpdateFlag(12, "beta", project),
        CreateFlag("beta", project), EvaluateFlag("beta", "ada", project),
        GetCurrentUser(project)};
    for (const grpc::Status& status : statuses) {
      ExpectRefused(status, "project", what);
      EXPECT_FALSE(absl::StrContains(status.error_message(), "demo")) << what;
      EXPECT_FALSE(absl::StrContains(status.error_message(), "other")) << what;
      EXPECT_LE(status.error_message().size(), 300u) << what << ": the message echoes it";
    }
  }
}

}  // namespace
}  // namespace posthog_gateway
