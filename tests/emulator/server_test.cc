// Handler tests: the emulator served in-process on port 0, driven with
// httplib::Client, seeded with emulator/seed/demo.json.

#include "emulator/server.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "emulator/http_util.h"
#include "emulator/state.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace posthog_emulator {
namespace {

using nlohmann::json;

constexpr char kToken[] = "phc_DemoK3y7wQ9mZ2xR4tY6uP8sA1dF3gH5jL7nB9vC0";
constexpr char kAllKey[] = "phx_DemoAllAcc3ssK3yQw8Er6Ty4Ui2Op0As9Df7Gh5Jk3Lz1Xc";
constexpr char kPersonsReadKey[] = "phx_DemoP3rs0nsR3adQz9Xw7Vu5Ts3Rq1Po8Nm6Lk4Jh2Gf";
constexpr char kSecret[] = "phs_DemoS3cr3tT0k3nXq7Wm2Rz9Kp4Ln6Jb8Hv1Fd3Gs5";

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

json ReadSeed() {
  std::ifstream in("emulator/seed/demo.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return json::parse(buffer.str());
}

class EmulatorServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.LoadSeed(ReadSeed()).ok());
    server_ = std::make_unique<EmulatorServer>(&state_, ServerOptions{4});
    absl::StatusOr<int> port = server_->Bind("127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    port_ = *port;
    thread_ = std::thread([this] { server_->Serve(); });
    server_->WaitUntilServing();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }
  void TearDown() override {
    server_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  httplib::Headers Bearer(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }
  // Get/Post return status and parsed body (null when empty or not JSON).
  std::pair<int, json> Get(const std::string& path, const httplib::Headers& h = {}) {
    auto res = client_->Get(path.c_str(), h);
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::pair<int, json> Send(const std::string& method, const std::string& path, const json& body,
                            const httplib::Headers& h = {}) {
    httplib::Result res =
        method == "POST"    ? client_->Post(path.c_str(), h, body.dump(), "application/json")
        : method == "PATCH" ? client_->Patch(path.c_str(), h, body.dump(), "application/json")
        : method == "PUT"   ? client_->Put(path.c_str(), h, body.dump(), "application/json")
                            : client_->Delete(path.c_str(), h);
    if (!res) return {-1, json()};
    return {res->status, res->body.empty() ? json() : json::parse(res->body, nullptr, false)};
  }
  std::pair<int, json> Capture(const std::string& path, const json& body) {
    return Send("POST", path, body);
  }
  json Events() { return Get("/_emulator/events").second; }

  EmulatorState state_;
  std::unique_ptr<EmulatorServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::thread thread_;
  int port_ = 0;
};

// --- /api/users/@me/ --------------------------------------------------------

TEST_F(EmulatorServerTest, UsersMeReturnsTheKeyOwnerWithTeamAndOrganization) {
  auto [status, body] = Get("/api/users/@me/", Bearer(kAllKey));
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body["email"], "dana@example.com");
  EXPECT_EQ(body["uuid"], "01908d6a-8c21-7d4e-9f5a-6b7c8d9e0f12");
  EXPECT_EQ(body["team"]["id"], 1);
  EXPECT_EQ(body["team"]["name"], "Demo");
  EXPECT_EQ(body["organization"]["id"], "01908d6a-6b2f-7c3e-9f10-2a4b6c8d0e11");
  EXPECT_EQ(body["organizations"].size(), 1u);
}

TEST_F(EmulatorServerTest, UsersMeWithUnknownBearerKeyIs401NamingTheHeader) {
  auto [status, body] = Get("/api/users/@me/", Bearer("phx_unknown"));
  EXPECT_EQ(status, 401);
  EXPECT_EQ(body,
            json({{"type", "authentication_error"},
                  {"code", "authentication_failed"},
                  {"detail", "Personal API key found in request Authorization header is invalid."},
                  {"attr", nullptr}}));
}

TEST_F(EmulatorServerTest, OnlyTheFirstKeyCandidateIsTried) {
  // A bad bearer key fails even though the query key is valid.
  auto [status, body] =
      Get(std::string("/api/users/@me/?personal_api_key=") + kAllKey, Bearer("phx_unknown"));
  EXPECT_EQ(status, 401);
  // The body key is used before the query key.
  auto [s2, b2] = Send("PATCH", std::string("/api/users/@me/?personal_api_key=") + kAllKey,
                       {{"personal_api_key", "phx_bad"}});
  EXPECT_EQ(s2, 401);
  EXPECT_EQ(b2["detail"], "Personal API key found in request body is invalid.");
  auto [s3, b3] = Get(std::string("/api/users/@me/?personal_api_key=") + kAllKey);
  EXPECT_EQ(s3, 200);
}

TEST_F(EmulatorServerTest, UsersMeWithoutKeyIs401NotAuthenticated) {
  auto [status, body] = Get("/api/users/@me/");
  EXPECT_EQ(status, 401);
  EXPECT_EQ(body["code"], "not_authenticated");
  EXPECT_EQ(body["detail"], "Authentication credentials were not provided.");
}

TEST_F(EmulatorServerTest, UsersMeWithoutUserScopeIs403) {
  auto [status, body] = Get("/api/users/@me/", Bearer(kPersonsReadKey));
  EXPECT_EQ(status, 403);
  EXPECT_EQ(body["code"], "permission_denied");
  EXPECT_EQ(body["detail"], "API key missing required scope 'user:read'");
}

TEST_F(EmulatorServerTest, UnknownApiRouteIs404WithPostHogBody) {
  auto [status, body] = Get("/api/does-not-exist/", Bearer(kAllKey));
  EXPECT_EQ(status, 404);
  EXPECT_EQ(body, json({{"type", "invalid_request"},
                        {"code", "not_found"},
                        {"detail", "Not found."},
                        {"attr", nullptr}}));
}

TEST_F(EmulatorServerTest, RequestLogRecordsTheAuthMethodPerRoute) {
  Get("/api/users/@me/", Bearer(kAllKey));
  Get(std::string("/api/users/@me/?personal_api_key=") + kAllKey);
  Get("/api/users/@me/");
  auto [status, body] = Get("/_emulator/requests?route=users");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body["routes"]["users"]["count"], 3);
  EXPECT_EQ(body["routes"]["users"]["auth"], json({{"bearer", 1}, {"query", 1}, {"none", 1}}));
  EXPECT_EQ(body["recent"][1]["path"], "/api/users/@me/");  // no query kept
}

// --- capture ----------------------------------------------------------------

TEST_F(EmulatorServerTest, CaptureStoresASingleEventWithItsUuid) {
  auto [status, body] = Capture("/i/v0/e/", {{"api_key", kToken},
                                             {"event", "signed up"},
                                             {"distinct_id", "u1"},
                                             {"uuid", "00000000-0000-4000-8000-000000000001"},
                                             {"properties", {{"plan", "pro"}}}});
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body, json({{"status", "Ok"}}));
  json events = Events();
  EXPECT_EQ(events["count"], 1);
  ASSERT_EQ(events["events"].size(), 1u);
  const json& e = events["events"][0];
  EXPECT_EQ(e["uuid"], "00000000-0000-4000-8000-000000000001");
  EXPECT_EQ(e["event"], "signed up");
  EXPECT_EQ(e["distinct_id"], "u1");
  EXPECT_EQ(e["team_id"], 1);
  EXPECT_FALSE(e.contains("api_key"));
}

TEST_F(EmulatorServerTest, BatchEnvelopeArrayAndDuplicatesAreCounted) {
  json batch = {
      {"api_key", kToken},
      {"batch",
       {{{"event", "a"}, {"distinct_id", "u"}, {"uuid", "11111111-0000-4000-8000-000000000001"}},
        {{"event", "b"}, {"distinct_id", "u"}, {"uuid", "11111111-0000-4000-8000-000000000002"}}}}};
  EXPECT_EQ(Capture("/batch/", batch).first, 200);
  EXPECT_EQ(Capture("/batch", batch).first, 200);  // resent: duplicates
  json array = {{{"event", "c"},
                 {"distinct_id", "u"},
                 {"token", kToken},
                 {"uuid", "11111111-0000-4000-8000-000000000003"}}};
  EXPECT_EQ(Capture("/e/", array).first, 200);
  json events = Events();
  EXPECT_EQ(events["count"], 3);
  EXPECT_EQ(events["duplicates"], 2);
  auto [s, one] = Get("/_emulator/events?uuid=11111111-0000-4000-8000-000000000002");
  ASSERT_EQ(one["events"].size(), 1u);
  EXPECT_EQ(one["events"][0]["event"], "b");
}

TEST_F(EmulatorServerTest, GzipBodiesAreAcceptedByHeaderQueryOrMagicBytes) {
  auto body = [](int n) {
    return json({{"api_key", kToken},
                 {"batch",
                  {{{"event", "gz"},
                    {"distinct_id", "u"},
                    {"uuid", "22222222-0000-4000-8000-00000000000" + std::to_string(n)}}}}})
        .dump();
  };
  auto r1 = client_->Post("/batch/", {{"Content-Encoding", "gzip"}}, GzipCompress(body(1)),
                          "application/json");
  auto r2 = client_->Post("/batch/?compression=gzip", GzipCompress(body(2)), "text/plain");
  auto r3 = client_->Post("/batch/", GzipCompress(body(3)), "application/octet-stream");
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r3->status, 200);
  EXPECT_EQ(Events()["count"], 3);
  // Their events are kept as the gzip bodies' bytes (EventStore) and read
  // back whole.
  for (int n = 1; n <= 3; ++n) {
    auto [status, found] =
        Get("/_emulator/events?uuid=22222222-0000-4000-8000-00000000000" + std::to_string(n));
    ASSERT_EQ(found["events"].size(), 1u) << n;
    EXPECT_EQ(found["events"][0]["event"], "gz");
    EXPECT_EQ(found["events"][0]["distinct_id"], "u");
  }
  // The capture routes gunzip `Content-Encoding: gzip` bodies themselves
  // (not httplib): a body so labelled that is not gzip, or corrupt gzip, is
  // still refused, and stores nothing.
  auto plain =
      client_->Post("/batch/", {{"Content-Encoding", "gzip"}}, body(4), "application/json");
  std::string corrupt = GzipCompress(body(5));
  corrupt[corrupt.size() / 2] ^= 0x55;
  corrupt[corrupt.size() / 2 + 1] ^= 0x55;
  auto bad = client_->Post("/e/", {{"Content-Encoding", "gzip"}}, corrupt, "application/json");
  ASSERT_TRUE(plain && bad);
  EXPECT_EQ(plain->status, 400);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(Events()["count"], 3);
}

TEST_F(EmulatorServerTest, CaptureRejectsBadTokensBodiesAndSizes) {
  EXPECT_EQ(Capture("/capture/", {{"event", "x"}, {"distinct_id", "u"}}).first, 401);
  EXPECT_EQ(
      Capture("/capture/", {{"api_key", "phc_nope"}, {"event", "x"}, {"distinct_id", "u"}}).first,
      401);
  auto bad = client_->Post("/capture/", "{not json", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(Capture("/batch/", {{"api_key", kToken}, {"batch", json::array()}}).first, 400);
  // 2 MiB limit on /capture/, counted after decompression.
  std::string big(2 * 1024 * 1024, 'a');
  json huge = {
      {"api_key", kToken}, {"event", "x"}, {"distinct_id", "u"}, {"properties", {{"blob", big}}}};
  auto r = client_->Post("/capture/", {{"Content-Encoding", "gzip"}}, GzipCompress(huge.dump()),
                         "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  // The same body fits /batch/'s 20 MiB.
  json as_batch = {{"api_key", kToken}, {"batch", {huge}}};
  as_batch["batch"][0].erase("api_key");
  EXPECT_EQ(Capture("/batch/", as_batch).first, 200);
  EXPECT_EQ(Events()["count"], 1);
}

// --- persons derived from events --------------------------------------------

TEST_F(EmulatorServerTest, IdentifyMergesTheAnonymousPersonAndAppliesSets) {
  json batch = {
      {"api_key", kToken},
      {"batch",
       {{{"event", "pageview"},
         {"distinct_id", "anon-1"},
         {"properties", {{"$set_once", {{"first_seen", "a"}}}, {"$set", {{"color", "red"}}}}}},
        {{"event", "$identify"},
         {"distinct_id", "user-9"},
         {"properties",
          {{"$anon_distinct_id", "anon-1"},
           {"$set", {{"email", "nine@example.com"}}},
           {"$set_once", {{"first_seen", "b"}}}}}},
        {{"event", "$set"},
         {"distinct_id", "user-9"},
         {"$set", {{"tier", 2}}},
         {"properties", {{"$unset", {"color"}}}}}}}};
  ASSERT_EQ(Capture("/batch/", batch).first, 200);
  auto [status, body] = Get("/api/projects/1/persons/?distinct_id=anon-1", Bearer(kAllKey));
  ASSERT_EQ(status, 200);
  ASSERT_EQ(body["results"].size(), 1u);
  const json& p = body["results"][0];
  EXPECT_EQ(p["distinct_ids"], json({"anon-1", "user-9"}));
  EXPECT_EQ(p["properties"],
            json({{"first_seen", "a"}, {"email", "nine@example.com"}, {"tier", 2}}));
  EXPECT_EQ(p["is_identified"], true);
  EXPECT_EQ(p["name"], "nine@example.com");
}

TEST_F(EmulatorServerTest, CreateAliasMergesTwoExistingPersons) {
  ASSERT_EQ(
      Capture("/batch/",
              {{"api_key", kToken},
               {"batch",
                {{{"event", "e"},
                  {"distinct_id", "x"},
                  {"properties", {{"$set", {{"a", 1}, {"b", 1}}}}}},
                 {{"event", "e"}, {"distinct_id", "y"}, {"properties", {{"$set", {{"b", 2}}}}}},
                 {{"event", "$create_alias"},
                  {"distinct_id", "x"},
                  {"properties", {{"distinct_id", "x"}, {"alias", "y"}}}}}}})
          .first,
      200);
  auto [status, body] = Get("/api/environments/1/persons/?distinct_id=y", Bearer(kAllKey));
  ASSERT_EQ(body["results"].size(), 1u);
  EXPECT_EQ(body["results"][0]["distinct_ids"], json({"x", "y"}));
  EXPECT_EQ(body["results"][0]["properties"], json({{"a", 1}, {"b", 1}}));
}

TEST_F(EmulatorServerTest, PersonlessEventsCreateNoPerson) {
  Capture("/i/v0/e/", {{"api_key", kToken},
                       {"event", "e"},
                       {"distinct_id", "ghost"},
                       {"properties", {{"$process_person_profile", false}}}});
  auto [status, body] = Get("/api/projects/1/persons/?distinct_id=ghost", Bearer(kAllKey));
  EXPECT_EQ(body["results"].size(), 0u);
}

// --- persons API ------------------------------------------------------------

TEST_F(EmulatorServerTest, PersonsListPagesWithAbsoluteNextAndPrevious) {
  ASSERT_EQ(Send("POST", "/_emulator/seed", {{"generate_persons", 250}}).first, 200);
  auto [status, body] = Get("/api/projects/1/persons/?limit=100&offset=100", Bearer(kAllKey));
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body["results"].size(), 100u);
  const std::string base = "http://127.0.0.1:" + std::to_string(port_);
  EXPECT_EQ(body["next"], base + "/api/projects/1/persons/?limit=100&offset=200");
  EXPECT_EQ(body["previous"], base + "/api/projects/1/persons/?limit=100");
  auto [s2, last] = Get("/api/projects/1/persons/?limit=100&offset=200", Bearer(kAllKey));
  EXPECT_EQ(last["results"].size(), 53u);  // 3 seeded + 250 generated
  EXPECT_TRUE(last["next"].is_null());
}

TEST_F(EmulatorServerTest, PersonsListFiltersByEmailSearchPropertiesAndCohort) {
  auto names = [&](const std::string& query) {
    auto [status, body] = Get("/api/projects/1/persons/?" + query, Bearer(kAllKey));
    EXPECT_EQ(status, 200) << query;
    json out = json::array();
    for (const json& p : body["results"]) out.push_back(p["properties"]["name"]);
    return out;
  };
  EXPECT_EQ(names("email=bob@example.org"), json({"Bob"}));
  EXPECT_EQ(names("search=CAROL"), json({"Carol"}));
  EXPECT_EQ(names("properties=" +
                  UrlEncode(R"([{"key":"age","value":30,"operator":"gt","type":"person"}])")),
            json({"Alice", "Carol"}));
  EXPECT_EQ(
      names("properties=" +
            UrlEncode(R"([{"key":"plan","value":"free","operator":"is_not","type":"person"}])")),
      json({"Alice", "Carol"}));
  EXPECT_EQ(names("cohort=1"), json({"Alice", "Carol"}));
  EXPECT_EQ(names("cohort=2"), json({"Bob"}));
}

TEST_F(EmulatorServerTest, PersonRetrieveByIdOrUuidAndDistinctIdIs400) {
  auto [s1, by_uuid] =
      Get("/api/projects/1/persons/01908d6b-0002-7000-8000-000000000002/", Bearer(kAllKey));
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(by_uuid["distinct_ids"], json({"user-bob"}));
  const int64_t pk = by_uuid["id"].get<int64_t>();
  auto [s2, by_pk] = Get("/api/projects/1/persons/" + std::to_string(pk) + "/", Bearer(kAllKey));
  EXPECT_EQ(s2, 200);
  EXPECT_EQ(by_pk["uuid"], "01908d6b-0002-7000-8000-000000000002");
  auto [s3, err] = Get("/api/projects/1/persons/user-bob/", Bearer(kAllKey));
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(err["detail"],
            "The ID provided does not look like a personID. If you are using a distinctId, "
            "please use /persons?distinct_id=user-bob instead.");
}

TEST_F(EmulatorServerTest, PersonWritesNeedPersonWriteScope) {
  const std::string path = "/api/projects/1/persons/01908d6b-0002-7000-8000-000000000002/";
  EXPECT_EQ(Get(path, Bearer(kPersonsReadKey)).first, 200);
  auto [status, body] = Send("DELETE", path, json(), Bearer(kPersonsReadKey));
  EXPECT_EQ(status, 403);
  EXPECT_EQ(body["detail"], "API key missing required scope 'person:write'");
}

TEST_F(EmulatorServerTest, PersonPropertyActionsAndDeleteAnswerLikePostHog) {
  const std::string path = "/api/projects/1/persons/01908d6b-0002-7000-8000-000000000002/";
  EXPECT_EQ(
      Send("POST", path + "update_property/", {{"key", "plan"}, {"value", "pro"}}, Bearer(kAllKey))
          .first,
      202);
  auto [s1, missing] = Send("POST", path + "update_property/", {{"key", "plan"}}, Bearer(kAllKey));
  EXPECT_EQ(s1, 400);
  EXPECT_EQ(missing, json({{"attr", "value"},
                           {"code", "This field is required."},
                           {"detail", "required"},
                           {"type", "validation_error"}}));
  auto [s2, deleted] =
      Send("POST", path + "delete_property/", {{"$unset", "age"}}, Bearer(kAllKey));
  EXPECT_EQ(s2, 201);
  EXPECT_EQ(deleted, json({{"success", true}}));
  EXPECT_EQ(Get(path, Bearer(kAllKey)).second["properties"],
            json({{"email", "bob@example.org"}, {"name", "Bob"}, {"plan", "pro"}}));
  EXPECT_EQ(Send("POST", "/api/projects/1/persons/", json::object(), Bearer(kAllKey)).first, 405);
  Capture("/i/v0/e/", {{"api_key", kToken}, {"event", "e"}, {"distinct_id", "user-bob"}});
  EXPECT_EQ(Send("DELETE", path + "?delete_events", json(), Bearer(kAllKey)).first, 202);
  EXPECT_EQ(Get(path, Bearer(kAllKey)).first, 404);
  EXPECT_EQ(Events()["count"], 0);
}

// --- feature flag CRUD -------------------------------------------------------

TEST_F(EmulatorServerTest, FlagCreateValidatesKeyAndUniqueness) {
  const std::string path = "/api/projects/1/feature_flags/";
  auto [s1, created] = Send("POST", path,
                            {{"key", "new-flag"},
                             {"name", "New"},
                             {"filters", {{"groups", {{{"rollout_percentage", 30}}}}}}},
                            Bearer(kAllKey));
  ASSERT_EQ(s1, 201);
  EXPECT_EQ(created["version"], 1);
  EXPECT_EQ(created["rollout_percentage"], 30);
  EXPECT_EQ(created["is_simple_flag"], true);
  auto [s2, invalid] = Send("POST", path, {{"key", "bad key!"}}, Bearer(kAllKey));
  EXPECT_EQ(s2, 400);
  EXPECT_EQ(invalid,
            json({{"type", "validation_error"},
                  {"code", "invalid_key"},
                  {"detail", "Only letters, numbers, hyphens (-) & underscores (_) are allowed."},
                  {"attr", "key"}}));
  auto [s3, dup] = Send("POST", path, {{"key", "new-flag"}}, Bearer(kAllKey));
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(dup["code"], "unique");
  EXPECT_EQ(dup["detail"], "There is already a feature flag with this key.");
}

TEST_F(EmulatorServerTest, FlagUpdatesBumpVersionAndStaleVersionIs409) {
  const std::string item = "/api/projects/1/feature_flags/1/";
  auto [s1, v2] = Send("PATCH", item, {{"active", false}, {"version", 1}}, Bearer(kAllKey));
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(v2["version"], 2);
  EXPECT_EQ(v2["active"], false);
  EXPECT_EQ(Send("PATCH", item, {{"active", true}, {"version", 1}}, Bearer(kAllKey)).first, 409);
  EXPECT_EQ(Send("DELETE", item, json(), Bearer(kAllKey)).first, 405);
  auto [s2, soft] = Send("PATCH", item, {{"deleted", true}}, Bearer(kAllKey));
  EXPECT_EQ(s2, 200);
  EXPECT_EQ(soft["version"], 3);
  auto [s3, list] = Get("/api/projects/1/feature_flags/?limit=2", Bearer(kAllKey));
  EXPECT_EQ(list["count"], 5);  // 6 seeded, one soft-deleted
  EXPECT_EQ(list["results"].size(), 2u);
  // Newest first; the seeded flags share a creation time, so newest id first.
  EXPECT_EQ(list["results"][0]["key"], "disabled-flag");
  EXPECT_EQ(list["results"][1]["key"], "company-flag");
  EXPECT_EQ(list["next"], "http://127.0.0.1:" + std::to_string(port_) +
                              "/api/projects/1/feature_flags/?limit=2&offset=2");
}

TEST_F(EmulatorServerTest, FlagListPagesLikeDrfLimitOffsetNewestFirst) {
  ASSERT_EQ(Send("POST", "/_emulator/seed", {{"generate_flags", 250}, {"project_id", 1}}).first,
            200);
  auto [s1, created] =
      Send("POST", "/api/projects/1/feature_flags/", {{"key", "newest"}}, Bearer(kAllKey));
  ASSERT_EQ(s1, 201);
  const std::string base = "http://127.0.0.1:" + std::to_string(port_);
  auto [s2, first] = Get("/api/projects/1/feature_flags/", Bearer(kAllKey));
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(first["count"], 257);  // 6 seeded + 250 generated + 1 created
  ASSERT_EQ(first["results"].size(), 100u);
  EXPECT_EQ(first["results"][0]["key"], "newest");
  EXPECT_EQ(first["results"][1]["key"], "generated-flag-249");
  EXPECT_EQ(first["next"], base + "/api/projects/1/feature_flags/?limit=100&offset=100");
  EXPECT_TRUE(first["previous"].is_null());
  auto [s3, middle] = Get("/api/projects/1/feature_flags/?limit=100&offset=100", Bearer(kAllKey));
  EXPECT_EQ(middle["next"], base + "/api/projects/1/feature_flags/?limit=100&offset=200");
  EXPECT_EQ(middle["previous"], base + "/api/projects/1/feature_flags/?limit=100");
  auto [s4, last] = Get("/api/projects/1/feature_flags/?limit=100&offset=200", Bearer(kAllKey));
  ASSERT_EQ(last["results"].size(), 57u);
  EXPECT_TRUE(last["next"].is_null());
  EXPECT_EQ(last["results"][56]["key"], "beta-feature");  // the oldest
  // A last page that is exactly full has no `next` either (DRF compares
  // offset + limit with count, unlike the persons list).
  auto [s5, exact] = Get("/api/projects/1/feature_flags/?limit=57&offset=200", Bearer(kAllKey));
  EXPECT_EQ(exact["results"].size(), 57u);
  EXPECT_TRUE(exact["next"].is_null());
}

TEST_F(EmulatorServerTest, FlagWritesNeedFeatureFlagWriteScope) {
  auto [status, body] =
      Send("POST", "/api/projects/1/feature_flags/", {{"key", "k"}}, Bearer(kPersonsReadKey));
  EXPECT_EQ(status, 403);
  EXPECT_EQ(body["detail"], "API key missing required scope 'feature_flag:write'");
}

// --- definitions ------------------------------------------------------------

TEST_F(EmulatorServerTest, DefinitionsCarryAWeakEtagAnd304OnMatch) {
  const std::string path = std::string("/flags/definitions?token=") + kToken + "&send_cohorts";
  auto res = client_->Get(path.c_str(), Bearer(kSecret));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string etag = res->get_header_value("ETag");
  EXPECT_EQ(etag.rfind("W/\"", 0), 0u);
  json body = json::parse(res->body);
  EXPECT_EQ(body["flags"].size(), 6u);
  EXPECT_EQ(body["group_type_mapping"], json({{"0", "company"}, {"1", "project"}}));
  EXPECT_TRUE(body["cohorts"].contains("1"));
  EXPECT_FALSE(body["cohorts"].contains("2"));  // static cohorts are omitted
  httplib::Headers conditional = Bearer(kAllKey);
  conditional.emplace("If-None-Match", etag);
  auto not_modified = client_->Get(path.c_str(), conditional);
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304);
  EXPECT_EQ(not_modified->body, "");
  Send("PATCH", "/api/projects/1/feature_flags/3/", {{"active", false}}, Bearer(kAllKey));
  auto changed = client_->Get(path.c_str(), conditional);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, 200);
  EXPECT_NE(changed->get_header_value("ETag"), etag);
}

TEST_F(EmulatorServerTest, DefinitionsAcceptOnlyTheBearerHeader) {
  const std::string path = std::string("/flags/definitions?token=") + kToken;
  auto [s1, b1] = Get(path + "&personal_api_key=" + kAllKey);
  EXPECT_EQ(s1, 401);
  EXPECT_EQ(b1["code"], "not_authenticated");
  auto [s2, b2] = Get(path, Bearer("phs_wrong"));
  EXPECT_EQ(s2, 401);
  EXPECT_EQ(b2["detail"], "Secret API token is invalid.");
  EXPECT_EQ(Get(path, Bearer(kPersonsReadKey)).first, 403);
  EXPECT_EQ(Get(std::string("/api/feature_flag/local_evaluation/?token=") + kToken, Bearer(kAllKey))
                .first,
            200);
}

// --- remote evaluation --------------------------------------------------------

TEST_F(EmulatorServerTest, FlagsV2UsesStoredPersonPropertiesAndCohorts) {
  auto [status, body] =
      Send("POST", "/flags/?v=2", {{"token", kToken}, {"distinct_id", "user-alice"}});
  ASSERT_EQ(status, 200);
  const json& flags = body["flags"];
  EXPECT_EQ(flags["pro-users"]["enabled"], true);
  EXPECT_EQ(flags["pro-users"]["reason"], json({{"code", "condition_match"},
                                                {"condition_index", 0},
                                                {"description", "Matched condition set 1"}}));
  EXPECT_EQ(flags["example-com-cohort"]["enabled"], true);
  EXPECT_EQ(flags["disabled-flag"]["reason"]["code"], "flag_disabled");
  EXPECT_EQ(flags["company-flag"]["reason"]["code"], "no_group_type");
  EXPECT_EQ(body["errorsWhileComputingFlags"], false);
  // Request properties override the stored person's.
  auto [s2, b2] = Send("POST", "/flags/?v=2",
                       {{"token", kToken},
                        {"distinct_id", "user-alice"},
                        {"person_properties", {{"plan", "free"}}},
                        {"groups", {{"company", "acme"}}}});
  EXPECT_EQ(b2["flags"]["pro-users"]["enabled"], false);
  EXPECT_EQ(b2["flags"]["pro-users"]["reason"]["code"], "no_condition_match");
  EXPECT_EQ(b2["flags"]["company-flag"]["enabled"], true);
}

TEST_F(EmulatorServerTest, LegacyShapesFollowTheVersionRules) {
  json request = {{"api_key", kToken}, {"distinct_id", "user-carol"}};
  auto [s1, v1] = Send("POST", "/flags", request);
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(v1["featureFlags"]["pro-users"], true);
  EXPECT_EQ(v1["featureFlags"]["disabled-flag"], false);
  EXPECT_FALSE(v1.contains("flags"));
  auto [s2, d3] = Send("POST", "/decide/?v=3", request);
  EXPECT_EQ(d3["featureFlags"], v1["featureFlags"]);
  auto [s3, d4] = Send("POST", "/decide/?v=4", request);
  EXPECT_TRUE(d4.contains("flags"));
  auto [s4, missing] = Send("POST", "/flags/?v=2", {{"token", kToken}});
  EXPECT_EQ(s4, 400);
  EXPECT_EQ(Send("POST", "/flags/?v=2", {{"token", "phc_nope"}, {"distinct_id", "x"}}).first, 401);
}

// --- rate limits and faults ---------------------------------------------------

TEST_F(EmulatorServerTest, PersonsThrottleAnswers429WithDrfBody) {
  ASSERT_EQ(
      Send("POST", "/_emulator/rate_limits", {{"enabled", true}, {"persons_per_minute", 2}}).first,
      200);
  EXPECT_EQ(Get("/api/projects/1/persons/", Bearer(kAllKey)).first, 200);
  EXPECT_EQ(Get("/api/projects/1/persons/", Bearer(kAllKey)).first, 200);
  auto res = client_->Get("/api/projects/1/persons/", Bearer(kAllKey));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_FALSE(res->has_header("Retry-After"));
  json body = json::parse(res->body);
  EXPECT_EQ(body["type"], "throttled_error");
  EXPECT_EQ(body["code"], "throttled");
  EXPECT_EQ(
      body["detail"].get<std::string>().rfind("Request was throttled. Expected available in ", 0),
      0u);
  // Other keys and other throttle classes are unaffected.
  EXPECT_EQ(Get("/api/projects/1/persons/", Bearer(kPersonsReadKey)).first, 200);
  EXPECT_EQ(Get("/api/users/@me/", Bearer(kAllKey)).first, 200);
}

TEST_F(EmulatorServerTest, CountLimitedFaultAppliesToExactlyNRequests) {
  ASSERT_EQ(Send("POST", "/_emulator/faults",
                 {{{"route", "users"},
                   {"error_rate", 1},
                   {"status", 503},
                   {"retry_after_s", 7},
                   {"count", 2}}})
                .first,
            200);
  auto r1 = client_->Get("/api/users/@me/", Bearer(kAllKey));
  auto r2 = client_->Get("/api/users/@me/", Bearer(kAllKey));
  auto r3 = client_->Get("/api/users/@me/", Bearer(kAllKey));
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->status, 503);
  EXPECT_EQ(r1->get_header_value("Retry-After"), "7");
  EXPECT_EQ(r2->status, 503);
  EXPECT_EQ(r3->status, 200);
  EXPECT_EQ(Get("/_emulator/faults").second["rules"][0]["count"], 0);
}

TEST_F(EmulatorServerTest, ForeignNextHostAndTruncationRewriteTheBody) {
  Send("POST", "/_emulator/faults",
       {{{"route", "persons"}, {"foreign_next_host", "http://evil.example:1234"}, {"count", 1}},
        {{"route", "/api/users/"}, {"truncate_rate", 1}, {"count", 1}}});
  auto [s1, page] = Get("/api/projects/1/persons/?limit=1", Bearer(kAllKey));
  EXPECT_EQ(page["next"], "http://evil.example:1234/api/projects/1/persons/?limit=1&offset=1");
  auto res = client_->Get("/api/users/@me/", Bearer(kAllKey));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(json::parse(res->body, nullptr, false).is_discarded());
}

TEST_F(EmulatorServerTest, ResetFaultMakesTheClientSeeAFailedTransfer) {
  Send("POST", "/_emulator/faults", {{{"route", "users"}, {"reset_rate", 1}, {"count", 1}}});
  auto res = client_->Get("/api/users/@me/", Bearer(kAllKey));
  EXPECT_FALSE(res);
  httplib::Client fresh("127.0.0.1", port_);
  auto again = fresh.Get("/api/users/@me/", Bearer(kAllKey));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(EmulatorServerTest, ResetClearsEventsAndReloadsTheSeed) {
  Capture("/i/v0/e/", {{"api_key", kToken}, {"event", "e"}, {"distinct_id", "new-person"}});
  Send("PATCH", "/api/projects/1/feature_flags/1/", {{"active", false}}, Bearer(kAllKey));
  ASSERT_EQ(Send("POST", "/_emulator/reset", json::object()).first, 200);
  EXPECT_EQ(Events()["count"], 0);
  EXPECT_EQ(Get("/api/projects/1/persons/?distinct_id=new-person", Bearer(kAllKey))
                .second["results"]
                .size(),
            0u);
  EXPECT_EQ(Get("/api/projects/1/feature_flags/1/", Bearer(kAllKey)).second["version"], 1);
}

// --- groups (cursor pagination) ---------------------------------------------

TEST_F(EmulatorServerTest, GroupTypesListTheSeededTypesByIndex) {
  auto [status, body] = Get("/api/projects/1/groups_types/", Bearer(kAllKey));
  ASSERT_EQ(status, 200) << body;
  ASSERT_EQ(body.size(), 2u);
  EXPECT_EQ(body[0]["group_type"], "company");
  EXPECT_EQ(body[0]["group_type_index"], 0);
  EXPECT_EQ(body[1]["group_type"], "project");
}

TEST_F(EmulatorServerTest, GroupsListIsCursorPaginatedNewestFirstAndStableUnderInserts) {
  ASSERT_TRUE(state_.AddSeed(json{{"generate_groups", 250}, {"project_id", 1}}).ok());
  auto [status, first] = Get("/api/projects/1/groups/?group_type_index=0", Bearer(kAllKey));
  ASSERT_EQ(status, 200) << first;
  EXPECT_FALSE(first.contains("count"));
  EXPECT_TRUE(first["previous"].is_null());
  ASSERT_EQ(first["results"].size(), 100u);
  EXPECT_EQ(first["results"][0]["group_key"], "generated-group-249");
  const std::string next = first["next"].get<std::string>();
  EXPECT_NE(next.find("/api/projects/1/groups/?group_type_index=0&cursor="), std::string::npos)
      << next;

  // Groups created now are newer than every listed one: the cursor's pages
  // do not move.
  for (int k = 0; k < 3; ++k) {
    auto [created, group] =
        Send("POST", "/api/projects/1/groups/",
             {{"group_type_index", 0}, {"group_key", absl::StrCat("new-", k)}}, Bearer(kAllKey));
    ASSERT_EQ(created, 201) << group;
  }
  std::vector<std::string> keys;
  for (const json& group : first["results"]) keys.push_back(group["group_key"]);
  std::string url = next.substr(next.find("/api/"));
  while (!url.empty()) {
    auto [page_status, page] = Get(url, Bearer(kAllKey));
    ASSERT_EQ(page_status, 200) << page;
    for (const json& group : page["results"]) keys.push_back(group["group_key"]);
    url =
        page["next"].is_string()
            ? page["next"].get<std::string>().substr(page["next"].get<std::string>().find("/api/"))
            : "";
  }
  ASSERT_EQ(keys.size(), 250u);
  for (int i = 0; i < 250; ++i) EXPECT_EQ(keys[i], absl::StrCat("generated-group-", 249 - i));
  // A new listing starts with the new groups.
  auto [again_status, again] = Get("/api/projects/1/groups/?group_type_index=0", Bearer(kAllKey));
  EXPECT_EQ(again["results"][0]["group_key"], "new-2");
}

TEST_F(EmulatorServerTest, GroupsListNeedsATypeIndexAndRefusesUnknownCursors) {
  auto [missing, body] = Get("/api/projects/1/groups/", Bearer(kAllKey));
  EXPECT_EQ(missing, 400);
  EXPECT_EQ(body["attr"], "group_type_index");
  auto [forged, forged_body] =
      Get("/api/projects/1/groups/?group_type_index=0&cursor=bm9wZQ%3D%3D", Bearer(kAllKey));
  EXPECT_EQ(forged, 404);
  auto [scope, scope_body] =
      Get("/api/projects/1/groups/?group_type_index=0", Bearer(kPersonsReadKey));
  EXPECT_EQ(scope, 403);
}

TEST_F(EmulatorServerTest, GroupsCreateFindUpdateAndDeleteProperties) {
  const std::string query = "?group_type_index=1&group_key=" + UrlEncode("acme & co");
  auto [created, group] = Send("POST", "/api/projects/1/groups/",
                               {{"group_type_index", 1},
                                {"group_key", "acme & co"},
                                {"group_properties", {{"plan", "pro"}}}},
                               Bearer(kAllKey));
  ASSERT_EQ(created, 201) << group;
  EXPECT_EQ(group["group_properties"]["plan"], "pro");
  auto [duplicate, duplicate_body] =
      Send("POST", "/api/projects/1/groups/", {{"group_type_index", 1}, {"group_key", "acme & co"}},
           Bearer(kAllKey));
  EXPECT_EQ(duplicate, 400);
  EXPECT_EQ(duplicate_body["detail"], "A group with this key already exists");

  auto [found, found_body] = Get("/api/projects/1/groups/find/" + query, Bearer(kAllKey));
  ASSERT_EQ(found, 200) << found_body;
  EXPECT_TRUE(found_body["notebook"].is_null());
  auto [set, set_body] = Send("POST", "/api/projects/1/groups/update_property/" + query,
                              {{"key", "seats"}, {"value", 12}}, Bearer(kAllKey));
  ASSERT_EQ(set, 200) << set_body;
  EXPECT_EQ(set_body["group_properties"]["seats"], 12);
  auto [unset, unset_body] = Send("POST", "/api/projects/1/groups/delete_property/" + query,
                                  {{"$unset", "plan"}}, Bearer(kAllKey));
  ASSERT_EQ(unset, 200) << unset_body;
  EXPECT_EQ(unset_body["group_properties"], json({{"seats", 12}}));
  auto [again, again_body] = Send("POST", "/api/projects/1/groups/delete_property/" + query,
                                  {{"$unset", "plan"}}, Bearer(kAllKey));
  EXPECT_EQ(again, 400);
  auto [unknown, unknown_body] =
      Get("/api/projects/1/groups/find/?group_type_index=1&group_key=nobody", Bearer(kAllKey));
  EXPECT_EQ(unknown, 404);
}

}  // namespace
}  // namespace posthog_emulator
