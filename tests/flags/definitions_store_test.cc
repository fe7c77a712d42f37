#include "server/flags/definitions_store.h"

#include <memory>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/key_store.h"
#include "server/posthog/posthog_client.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway::flags {
namespace {

using posthog_gateway::test_support::FakeClock;
using posthog_gateway::test_support::FakeHttpClient;
using ::testing::Contains;
using ::testing::Not;
using ::testing::Pair;

constexpr char kDefinitions[] =
    R"({"flags": [{"id": 1, "key": "beta", "active": true, "version": 2,
                   "filters": {"groups": [{"rollout_percentage": 100}]}}],
        "group_type_mapping": {}, "cohorts": {}})";

class DefinitionsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(/*secure_key=*/true); }

  void Build(bool secure_key) {
    store_.reset();
    ProjectConfig project;
    project.alias = "demo";
    project.ingestion_host = "https://ingest.example";
    project.app_host = "https://app.example";
    project.project_api_key.env = "PHC";
    project.personal_api_key.env = "PHX";
    if (secure_key) project.feature_flags_secure_key.env = "PHS";
    config_ = GatewayConfig();
    config_.projects.push_back(project);
    config_.default_project = "demo";
    keys_ = std::make_unique<KeyStore>(config_, [](const std::string& name) {
      return std::optional<std::string>(name == "PHC"   ? "phc_token"
                                        : name == "PHX" ? "phx_personal"
                                                        : "phs_secure");
    });
    client_ = std::make_unique<PostHogClient>(project, config_.upstream, keys_.get(), &http_);
    FlagsConfig options;
    options.poll_interval = absl::Seconds(30);
    options.max_backoff = absl::Seconds(60);
    store_ = std::make_unique<DefinitionsStore>(client_.get(), options, &clock_);
  }

  FakeClock clock_{absl::FromUnixSeconds(1000)};
  GatewayConfig config_;
  FakeHttpClient http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<PostHogClient> client_;
  std::unique_ptr<DefinitionsStore> store_;
};

TEST_F(DefinitionsStoreTest, FirstLoadUsesSecureKeyOnIngestionHostAndPublishes) {
  EXPECT_FALSE(store_->Loaded());
  http_.Respond(200, kDefinitions, {{"etag", "W/\"abc\""}});
  EXPECT_EQ(store_->PollOnce(), absl::Seconds(30));
  ASSERT_EQ(http_.requests().size(), 1u);
  const HttpRequest request = http_.requests()[0];
  EXPECT_EQ(request.url, "https://ingest.example/flags/definitions?token=phc_token&send_cohorts");
  EXPECT_THAT(request.headers, Contains(Pair("Authorization", "Bearer phs_secure")));
  EXPECT_TRUE(store_->Loaded());
  auto snapshot = store_->Current();
  ASSERT_NE(snapshot->definitions, nullptr);
  EXPECT_NE(snapshot->definitions->Find("beta"), nullptr);
  EXPECT_EQ(snapshot->etag, "W/\"abc\"");
  EXPECT_EQ(snapshot->fetch_time, clock_.Now());
  EXPECT_FALSE(snapshot->stale);
}

TEST_F(DefinitionsStoreTest, PersonalKeyGoesToTheAppHost) {
  Build(/*secure_key=*/false);
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].url,
            "https://app.example/flags/definitions?token=phc_token&send_cohorts");
  EXPECT_THAT(http_.requests()[0].headers, Contains(Pair("Authorization", "Bearer phx_personal")));
}

TEST_F(DefinitionsStoreTest, SendsIfNoneMatchAndKeepsDefinitionsOn304) {
  http_.Respond(200, kDefinitions, {{"etag", "W/\"abc\""}});
  store_->PollOnce();
  auto first = store_->Current();
  http_.Respond(304, "");
  clock_.Advance(absl::Seconds(30));
  store_->PollOnce();
  EXPECT_THAT(http_.requests()[1].headers, Contains(Pair("If-None-Match", "W/\"abc\"")));
  auto second = store_->Current();
  EXPECT_EQ(second->definitions, first->definitions);
  EXPECT_EQ(second->generation, first->generation);
  EXPECT_EQ(second->fetch_time, clock_.Now());
}

TEST_F(DefinitionsStoreTest, ForgetsTheEtagWhenPostHogStopsSendingOne) {
  http_.Respond(200, kDefinitions, {{"etag", "W/\"abc\""}});
  store_->PollOnce();
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  EXPECT_THAT(http_.requests()[2].headers, Not(Contains(Pair("If-None-Match", ::testing::_))));
}

TEST_F(DefinitionsStoreTest, BacksOffExponentiallyOnRefusalsAndServesStale) {
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  http_.Respond(401, "{}");
  EXPECT_EQ(store_->PollOnce(), absl::Seconds(60));
  EXPECT_TRUE(store_->Current()->stale);
  EXPECT_NE(store_->Current()->definitions, nullptr);
  http_.Respond(429, "{}");
  EXPECT_EQ(store_->PollOnce(), absl::Seconds(60));  // Capped at max_backoff.
  http_.Respond(200, kDefinitions);
  EXPECT_EQ(store_->PollOnce(), absl::Seconds(30));
  EXPECT_FALSE(store_->Current()->stale);
}

TEST_F(DefinitionsStoreTest, ClearsOnQuotaExceeded) {
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  http_.Respond(402, "{}");
  store_->PollOnce();
  EXPECT_EQ(store_->Current()->definitions, nullptr);
  EXPECT_TRUE(store_->Current()->quota_limited);
}

TEST_F(DefinitionsStoreTest, UnreachableKeepsDefinitionsMarkedStale) {
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  const uint64_t generation = store_->Current()->generation;
  http_.Script(absl::UnavailableError("connection refused"));
  store_->PollOnce();
  EXPECT_TRUE(store_->Current()->stale);
  EXPECT_NE(store_->Current()->definitions, nullptr);
  EXPECT_GT(store_->Current()->generation, generation);
  http_.Respond(503, "");
  store_->PollOnce();
  EXPECT_TRUE(store_->Current()->stale);
}

TEST_F(DefinitionsStoreTest, WaitForChangeReturnsOnPublishAndOnStop) {
  http_.Respond(200, kDefinitions);
  store_->PollOnce();
  const uint64_t generation = store_->Current()->generation;
  // Nothing changes: times out with the same generation.
  EXPECT_EQ(store_->WaitForChange(generation, absl::Milliseconds(1))->generation, generation);
  http_.Script(absl::UnavailableError("down"));
  store_->PollOnce();
  EXPECT_NE(store_->WaitForChange(generation, absl::InfiniteDuration())->generation, generation);
  store_->Stop();
  const uint64_t now = store_->Current()->generation;
  EXPECT_EQ(store_->WaitForChange(now, absl::InfiniteDuration())->generation, now);
}

}  // namespace
}  // namespace posthog_gateway::flags
