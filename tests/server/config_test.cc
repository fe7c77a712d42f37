#include "server/config/config.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::StatusOr<GatewayConfig>& config) {
  return std::string(config.status().message());
}

TEST(ConfigTest, MinimalProjectGetsUsCloudHostsAndIsTheDefault) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12,
                  "personal_api_key": {"env": "PH_PERSONAL"}}]})");

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->default_project, "main");
  ASSERT_EQ(config->projects.size(), 1u);
  const ProjectConfig& project = config->projects[0];
  EXPECT_EQ(project.ingestion_host, "https://us.i.posthog.com");
  EXPECT_EQ(project.app_host, "https://us.posthog.com");
  EXPECT_EQ(project.personal_api_key.env, "PH_PERSONAL");
  EXPECT_FALSE(project.project_api_key.configured());
  EXPECT_EQ(config->server.port, 50051);
  EXPECT_FALSE(config->server.tls.has_value());  // Plaintext unless asked.
}

TEST(ConfigTest, GeoipIsDisabledUnlessAProjectTurnsItOn) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "a", "project_id": 1, "project_api_key": {"env": "A"}},
                 {"alias": "b", "project_id": 2, "project_api_key": {"env": "B"},
                  "disable_geoip": false}],
    "default_project": "a"})");

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->projects[0].disable_geoip);
  EXPECT_FALSE(config->projects[1].disable_geoip);
}

TEST(ConfigTest, RefusesAGeoipSettingThatIsNotABoolean) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "a", "project_id": 1, "project_api_key": {"env": "A"},
                  "disable_geoip": "no"}]})");

  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(config), "config: projects[0].disable_geoip: must be true or false");
}

TEST(ConfigTest, EuRegionSelectsEuHosts) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "eu", "project_id": 1, "region": "eu",
                  "project_api_key": {"file": "/k"}}]})");

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->projects[0].ingestion_host, "https://eu.i.posthog.com");
  EXPECT_EQ(config->projects[0].app_host, "https://eu.posthog.com");
}

TEST(ConfigTest, SelfHostedUrlsOverrideTheRegionAndLoseTrailingSlashes) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "self", "project_id": 3,
                  "ingestion_host": "http://posthog.internal:8000/",
                  "app_host": "https://posthog.internal//",
                  "project_api_key": {"file": "/k"}}]})");

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->projects[0].ingestion_host, "http://posthog.internal:8000");
  EXPECT_EQ(config->projects[0].app_host, "https://posthog.internal");
}

TEST(ConfigTest, ReadsServerUpstreamAndReloadSettings) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "default_project": "b",
    "projects": [{"alias": "a", "project_id": 1, "project_api_key": {"file": "/a"}},
                 {"alias": "b", "project_id": 2, "project_api_key": {"file": "/b"}}],
    "server": {"port": 6000, "max_receive_message_bytes": 1048576,
               "max_connection_age_ms": 60000, "caller_identity": "istio",
               "access_log": "errors",
               "tls": {"cert_file": "/tls/tls.crt", "key_file": "/tls/tls.key",
                       "client_ca_file": "/tls/ca.crt", "refresh_interval_ms": 30000,
                       "plaintext_health_port": 50052}},
    "upstream": {"default_timeout_ms": 2500, "ca_file": "/etc/ca.pem"},
    "key_reload_interval_ms": 500})");

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->FindProject("")->alias, "b");
  EXPECT_EQ(config->FindProject("a")->project_id, 1);
  EXPECT_EQ(config->FindProject("zzz"), nullptr);
  EXPECT_EQ(config->server.port, 6000);
  EXPECT_EQ(config->server.max_receive_message_bytes, 1048576);
  EXPECT_EQ(config->server.max_connection_age, absl::Seconds(60));
  EXPECT_EQ(config->server.caller_identity, CallerIdentitySource::kIstio);
  EXPECT_EQ(config->server.access_log, AccessLog::kErrors);
  ASSERT_TRUE(config->server.tls.has_value());
  EXPECT_EQ(config->server.tls->cert_file, "/tls/tls.crt");
  EXPECT_EQ(config->server.tls->key_file, "/tls/tls.key");
  EXPECT_EQ(config->server.tls->client_ca_file, "/tls/ca.crt");
  EXPECT_EQ(config->server.tls->refresh_interval, absl::Seconds(30));
  EXPECT_EQ(config->server.tls->plaintext_health_port, 50052);
  EXPECT_EQ(config->upstream.default_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(config->upstream.ca_file, "/etc/ca.pem");
  EXPECT_EQ(config->key_reload_interval, absl::Milliseconds(500));
}

// The plaintext health port: none unless given; 0 asks for any free port.
TEST(ConfigTest, TlsPlaintextHealthPortIsNoneUnlessGivenAndZeroIsAnyPort) {
  for (const auto& [tls, port] : std::vector<std::pair<std::string, int>>{
           {R"({"cert_file": "/c", "key_file": "/k"})", -1},
           {R"({"cert_file": "/c", "key_file": "/k", "plaintext_health_port": -1})", -1},
           {R"({"cert_file": "/c", "key_file": "/k", "plaintext_health_port": 0})", 0}}) {
    absl::StatusOr<GatewayConfig> config =
        ParseConfig(absl::StrCat(R"({"projects": [{"alias": "a", "project_id": 1,
                                     "project_api_key": {"file": "/k"}}],
                                     "server": {"tls": )",
                                 tls, "}}"));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->server.tls->plaintext_health_port, port) << tls;
  }
}

struct BadConfig {
  std::string name;
  std::string json;
  std::string message_part;
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRefusedWithAMessageNamingTheField) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(GetParam().json);

  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config), HasSubstr(GetParam().message_part));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfigTest,
    ::testing::Values(
        BadConfig{"NotJson", "{", "not valid JSON"},
        BadConfig{"NoProjects", R"({"projects": []})", "projects: must list"},
        BadConfig{"KeyWrittenInline",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "personal_api_key": "phx_inline"}]})",
                  "projects[0].personal_api_key: keys are never written"},
        BadConfig{"KeyWithBothSources",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "personal_api_key": {"file": "/k", "env": "K"}}]})",
                  "needs exactly one of"},
        BadConfig{"NoKeys", R"({"projects": [{"alias": "a", "project_id": 1}]})",
                  "needs a project_api_key or a personal_api_key"},
        BadConfig{"MissingAlias",
                  R"({"projects": [{"project_id": 1, "project_api_key": {"file": "/k"}}]})",
                  "projects[0].alias: is required"},
        BadConfig{"DuplicateAlias",
                  R"({"default_project": "a", "projects": [
                      {"alias": "a", "project_id": 1, "project_api_key": {"file": "/k"}},
                      {"alias": "a", "project_id": 2, "project_api_key": {"file": "/k"}}]})",
                  "projects[1].alias: duplicate alias"},
        BadConfig{"ProjectIdNotPositive",
                  R"({"projects": [{"alias": "a", "project_id": 0,
                      "project_api_key": {"file": "/k"}}]})",
                  "projects[0].project_id"},
        BadConfig{"BadRegion",
                  R"({"projects": [{"alias": "a", "project_id": 1, "region": "mars",
                      "project_api_key": {"file": "/k"}}]})",
                  "projects[0].region"},
        BadConfig{"HostWithoutScheme",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "app_host": "posthog.internal", "project_api_key": {"file": "/k"}}]})",
                  "projects[0].app_host: must be an http or https URL"},
        BadConfig{"UnknownField",
                  R"({"projects": [{"alias": "a", "project_id": 1, "projet_api_key": {},
                      "project_api_key": {"file": "/k"}}]})",
                  "projects[0].projet_api_key: unknown field"},
        BadConfig{"DefaultNamesNoProject",
                  R"({"default_project": "x", "projects": [{"alias": "a",
                      "project_id": 1, "project_api_key": {"file": "/k"}}]})",
                  "default_project: names no project"},
        BadConfig{"DefaultRequiredWithTwoProjects",
                  R"({"projects": [
                      {"alias": "a", "project_id": 1, "project_api_key": {"file": "/k"}},
                      {"alias": "b", "project_id": 2, "project_api_key": {"file": "/k"}}]})",
                  "default_project: is required"},
        BadConfig{"PortOutOfRange",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}], "server": {"port": 70000}})",
                  "server.port"},
        BadConfig{"UnknownCallerIdentity",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"caller_identity": "consul"}})",
                  "server.caller_identity"},
        BadConfig{"UnknownAccessLog",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"access_log": "some"}})",
                  "server.access_log"},
        BadConfig{"TlsCallerIdentityWithoutClientCertificates",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"caller_identity": "tls",
                                 "tls": {"cert_file": "/c", "key_file": "/k"}}})",
                  "server.caller_identity: \"tls\" needs server.tls.client_ca_file"},
        BadConfig{"TlsWithoutKey",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"tls": {"cert_file": "/c"}}})",
                  "server.tls.key_file: is required"},
        BadConfig{"TlsUnknownField",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"tls": {"cert_file": "/c", "key_file": "/k", "ca": "/x"}}})",
                  "server.tls.ca: unknown field"},
        BadConfig{"TlsRefreshTooOften",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"tls": {"cert_file": "/c", "key_file": "/k",
                                         "refresh_interval_ms": 10}}})",
                  "server.tls.refresh_interval_ms"},
        BadConfig{"TlsHealthPortBelowNone",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "server": {"tls": {"cert_file": "/c", "key_file": "/k",
                                         "plaintext_health_port": -2}}})",
                  "server.tls.plaintext_health_port: must be between -1 and 65535"},
        BadConfig{"NegativeTimeout",
                  R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "upstream": {"default_timeout_ms": -1}})",
                  "upstream.default_timeout_ms: must not be negative"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return info.param.name; });

// --- flags section (feature flags) ---

TEST(ConfigTest, FlagsSectionDefaultsAndValues) {
  absl::StatusOr<GatewayConfig> defaults = ParseConfig(R"({
    "projects": [{"alias": "a", "project_id": 1, "project_api_key": {"file": "/k"}}]})");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->flags.poll_interval, absl::Seconds(30));
  EXPECT_EQ(defaults->flags.max_backoff, absl::Seconds(60));
  EXPECT_EQ(defaults->flags.request_timeout, absl::Seconds(10));
  EXPECT_EQ(defaults->flags.watch_heartbeat, absl::Seconds(15));
  EXPECT_EQ(defaults->flags.flag_called_cache_size, 50000);
  EXPECT_EQ(defaults->flags.max_remote_evaluations, 256);

  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "a", "project_id": 1, "project_api_key": {"file": "/k"}}],
    "flags": {"poll_interval_ms": 500, "max_backoff_ms": 4000, "request_timeout_ms": 2000,
              "watch_heartbeat_ms": 100, "flag_called_cache_size": 10,
              "flag_called_flush_interval_ms": 50, "max_remote_evaluations": 8}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->flags.poll_interval, absl::Milliseconds(500));
  EXPECT_EQ(config->flags.max_backoff, absl::Seconds(4));
  EXPECT_EQ(config->flags.request_timeout, absl::Seconds(2));
  EXPECT_EQ(config->flags.watch_heartbeat, absl::Milliseconds(100));
  EXPECT_EQ(config->flags.flag_called_cache_size, 10);
  EXPECT_EQ(config->flags.flag_called_flush_interval, absl::Milliseconds(50));
  EXPECT_EQ(config->flags.max_remote_evaluations, 8);
}

INSTANTIATE_TEST_SUITE_P(
    Flags, BadConfigTest,
    ::testing::Values(BadConfig{"PollIntervalTooShort",
                                R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}], "flags": {"poll_interval_ms": 10}})",
                                "flags.poll_interval_ms: must be at least 100"},
                      BadConfig{"UnknownFlagsField",
                                R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}], "flags": {"poll": 1}})",
                                "flags.poll: unknown field"},
                      BadConfig{"CacheSizeZero",
                                R"({"projects": [{"alias": "a", "project_id": 1,
                      "project_api_key": {"file": "/k"}}],
                      "flags": {"flag_called_cache_size": 0}})",
                                "flags.flag_called_cache_size: must be at least 1"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return info.param.name; });

TEST(ConfigTest, PagingDefaultsArePostHogsThrottles) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12, "personal_api_key": {"env": "K"}}]})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->paging.persons_per_minute, 240);
  EXPECT_EQ(config->paging.persons_per_hour, 1200);
  EXPECT_EQ(config->paging.flags_per_minute, 480);
  EXPECT_EQ(config->paging.flags_per_hour, 4800);
  EXPECT_EQ(config->paging.look_ahead, 3);
  EXPECT_EQ(config->paging.resume_token_ttl, absl::Hours(24));
  EXPECT_FALSE(config->paging.resume_token_secret.configured());
}

TEST(ConfigTest, ReadsPagingSettings) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12, "personal_api_key": {"env": "K"}}],
    "paging": {"persons_per_minute": 60, "persons_per_hour": 0, "look_ahead": 5,
               "flags_per_minute": 30, "flags_per_hour": 0,
               "resume_token_ttl_ms": 60000,
               "resume_token_secret": {"file": "/var/run/secrets/paging"}}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->paging.persons_per_minute, 60);
  EXPECT_EQ(config->paging.persons_per_hour, 0);
  EXPECT_EQ(config->paging.flags_per_minute, 30);
  EXPECT_EQ(config->paging.flags_per_hour, 0);
  EXPECT_EQ(config->paging.look_ahead, 5);
  EXPECT_EQ(config->paging.resume_token_ttl, absl::Minutes(1));
  EXPECT_EQ(config->paging.resume_token_secret.file, "/var/run/secrets/paging");
}

TEST(ConfigTest, ReadsThreadAndStreamBounds) {
  absl::StatusOr<GatewayConfig> defaults = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12, "personal_api_key": {"env": "K"}}]})");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->paging.fetch_threads, 16);
  EXPECT_EQ(defaults->server.max_streams, 1000);
  EXPECT_EQ(defaults->server.max_streams_per_caller, 200);
  EXPECT_EQ(defaults->server.max_handler_threads, 512);
  EXPECT_EQ(defaults->server.max_receive_message_bytes, 4 << 20);
  EXPECT_EQ(defaults->capture.max_delivered_waits, 256);
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12, "personal_api_key": {"env": "K"}}],
    "paging": {"fetch_threads": 4},
    "server": {"max_streams": 10, "max_streams_per_caller": 0, "max_handler_threads": 64},
    "capture": {"max_delivered_waits": 8}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->paging.fetch_threads, 4);
  EXPECT_EQ(config->server.max_streams, 10);
  EXPECT_EQ(config->server.max_streams_per_caller, 0);
  EXPECT_EQ(config->server.max_handler_threads, 64);
  EXPECT_EQ(config->capture.max_delivered_waits, 8);
  for (const char* bad :
       {R"("paging": {"fetch_threads": 0})", R"("paging": {"fetch_threads": 257})",
        R"("server": {"max_streams": -1})", R"("server": {"max_handler_threads": 4})",
        R"("capture": {"max_delivered_waits": 0})"}) {
    absl::StatusOr<GatewayConfig> refused = ParseConfig(absl::StrCat(
        R"({"projects": [{"alias": "main", "project_id": 12, "personal_api_key": {"env": "K"}}], )",
        bad, "}"));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ConfigTest, RefusesBadPagingSettings) {
  for (const char* paging :
       {R"({"look_ahead": 17})", R"({"persons_per_minute": -1})", R"({"flags_per_minute": -1})",
        R"({"flags_per_hour": 1e3})", R"({"flags_per_hour": 4294967296})",
        R"({"resume_token_secret": "inline-secret"})", R"({"resume_token_ttl_ms": 10})",
        R"({"unknown": 1})"}) {
    absl::StatusOr<GatewayConfig> config = ParseConfig(absl::StrCat(
        R"({"projects": [{"alias": "main", "project_id": 12, "personal_api_key": {"env": "K"}}], "paging": )",
        paging, "}"));
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << paging;
    EXPECT_NE(config.status().message().find("paging"), absl::string_view::npos) << config.status();
  }
}

TEST(ConfigFileTest, TheDocumentedExampleParses) {
  absl::StatusOr<GatewayConfig> config = LoadConfigFile("deploy/gateway.example.json");

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->default_project, "prod");
  ASSERT_EQ(config->projects.size(), 2u);
  EXPECT_EQ(config->projects[1].app_host, "https://posthog.internal.example.com");
  EXPECT_EQ(config->projects[1].personal_api_key.env, "SELFHOSTED_POSTHOG_PERSONAL_API_KEY");
  EXPECT_EQ(config->paging.flags_per_minute, 480);
  EXPECT_EQ(config->paging.flags_per_hour, 4800);
}

TEST(ConfigFileTest, TheKubernetesBaseConfigParses) {
  absl::StatusOr<GatewayConfig> config = LoadConfigFile("deploy/kubernetes/base/config.json");

  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_FALSE(config->projects.empty());
  EXPECT_FALSE(config->projects[0].personal_api_key.file.empty());
}

TEST(ConfigFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadConfigFile("/nonexistent/gateway.json").status().code(),
            absl::StatusCode::kNotFound);
}

constexpr char kOneProject[] =
    R"("projects": [{"alias": "a", "project_id": 1, "project_api_key": {"file": "/a"}}])";

TEST(ConfigTest, CaptureHasDefaultsWhenAbsent) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(absl::StrCat("{", kOneProject, "}"));

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->capture.spool_dir, "/var/lib/posthog-gateway/spool");
  EXPECT_EQ(config->capture.batch_max_events, 1000);
  EXPECT_EQ(config->capture.flush_interval, absl::Milliseconds(200));
  EXPECT_EQ(config->capture.max_in_flight_batches, 4);
}

TEST(ConfigTest, RedisIsAbsentUnlessConfiguredAndReadWithItsDefaults) {
  absl::StatusOr<GatewayConfig> alone = ParseConfig(absl::StrCat("{", kOneProject, "}"));
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_FALSE(alone->redis.has_value());

  absl::StatusOr<GatewayConfig> fleet = ParseConfig(absl::StrCat("{", kOneProject, R"(,
    "redis": {"address": "redis.infra:6379", "password": {"file": "/redis/password"},
              "lease_ms": 2000}})"));
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  ASSERT_TRUE(fleet->redis.has_value());
  EXPECT_EQ(fleet->redis->address, "redis.infra:6379");
  EXPECT_EQ(fleet->redis->password.file, "/redis/password");
  EXPECT_EQ(fleet->redis->key_prefix, "posthog-gateway");
  EXPECT_EQ(fleet->redis->command_timeout, absl::Milliseconds(50));
  EXPECT_EQ(fleet->redis->lease, absl::Milliseconds(2000));
}

TEST(ConfigTest, BadRedisSettingsNameTheirField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"address": "redis"})", "redis.address: must be host:port"},
      {R"({"address": "redis:0"})", "redis.address: must be host:port"},
      {R"({"address": "redis:6379", "tls": true})", "redis.tls: is not supported"},
      {R"({"address": "redis:6379", "password": "inline"})", "redis.password"},
      {R"({"address": "redis:6379", "lease_ms": 100})", "redis.lease_ms: must be at least 500"},
      {R"({"address": "redis:6379", "command_timeout_ms": 5000})",
       "redis.command_timeout_ms: must be between 1 and 1000"},
      {R"({"address": "redis:6379", "key_prefix": "a b"})", "redis.key_prefix"},
      {R"({"address": "redis:6379", "hosts": []})", "redis.hosts: unknown field"},
  };
  for (const auto& [redis, message] : cases) {
    absl::StatusOr<GatewayConfig> config =
        ParseConfig(absl::StrCat("{", kOneProject, R"(, "redis": )", redis, "}"));
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << redis;
    EXPECT_THAT(Message(config), HasSubstr(message)) << redis;
  }
}

TEST(ConfigTest, ReadsCaptureSettings) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(absl::StrCat("{", kOneProject, R"(,
    "capture": {"spool_dir": "/spool", "max_spool_bytes": 10485760,
                "segment_bytes": 1048576, "batch_max_events": 50,
                "batch_max_bytes": 65536, "flush_interval_ms": 20,
                "max_in_flight_batches": 2, "initial_backoff_ms": 5,
                "max_backoff_ms": 500, "max_event_bytes": 2048,
                "max_properties_depth": 4, "memory_queue_bytes": 131072}})"));

  ASSERT_TRUE(config.ok()) << config.status();
  const CaptureConfig& capture = config->capture;
  EXPECT_EQ(capture.spool_dir, "/spool");
  EXPECT_EQ(capture.max_spool_bytes, 10485760);
  EXPECT_EQ(capture.segment_bytes, 1048576);
  EXPECT_EQ(capture.batch_max_events, 50);
  EXPECT_EQ(capture.batch_max_bytes, 65536);
  EXPECT_EQ(capture.flush_interval, absl::Milliseconds(20));
  EXPECT_EQ(capture.max_in_flight_batches, 2);
  EXPECT_EQ(capture.initial_backoff, absl::Milliseconds(5));
  EXPECT_EQ(capture.max_backoff, absl::Milliseconds(500));
  EXPECT_EQ(capture.max_event_bytes, 2048);
  EXPECT_EQ(capture.max_properties_depth, 4);
  EXPECT_EQ(capture.memory_queue_bytes, 131072);
}

struct BadCaptureCase {
  const char* capture;
  const char* message;
};

class BadCaptureConfigTest : public ::testing::TestWithParam<BadCaptureCase> {};

TEST_P(BadCaptureConfigTest, IsRefusedNamingTheField) {
  absl::StatusOr<GatewayConfig> config =
      ParseConfig(absl::StrCat("{", kOneProject, R"(, "capture": )", GetParam().capture, "}"));

  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadCaptureConfigTest,
    ::testing::Values(
        BadCaptureCase{R"({"spool_dir": ""})", "capture.spool_dir: must not be empty"},
        BadCaptureCase{R"({"batch_max_events": 0})", "capture.batch_max_events"},
        BadCaptureCase{R"({"batch_max_bytes": 30000000})", "capture.batch_max_bytes"},
        BadCaptureCase{R"({"max_in_flight_batches": 0})", "capture.max_in_flight_batches"},
        BadCaptureCase{R"({"max_spool_bytes": 1000})", "capture.max_spool_bytes"},
        BadCaptureCase{R"({"flush_interval_ms": 0})", "capture.flush_interval_ms"},
        BadCaptureCase{R"({"flush_interval_ms": -1})", "capture.flush_interval_ms"},
        BadCaptureCase{R"({"max_event_bytes": 4096, "batch_max_bytes": 2048})",
                       "capture.max_event_bytes"},
        BadCaptureCase{R"({"spool": "/x"})", "capture.spool: unknown field"},
        BadCaptureCase{R"({"memory_queue_bytes": 1000})", "capture.memory_queue_bytes"},
        BadCaptureCase{R"("x")", "capture: must be an object"}));

TEST(ConfigTest, AuthorizationIsEnforcedWithoutCallersByDefault) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12, "project_api_key": {"env": "K"}}]})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->authorization.development_mode);
  EXPECT_TRUE(config->authorization.callers.empty());
  EXPECT_EQ(config->authorization.quotas.persons_per_minute, 60);
}

TEST(ConfigTest, ReadsAuthorization) {
  absl::StatusOr<GatewayConfig> config = ParseConfig(R"({
    "projects": [{"alias": "main", "project_id": 12, "project_api_key": {"env": "K"}}],
    "authorization": {
      "development_mode": false,
      "callers": [{"caller": "spiffe://c/ns/a/sa/b", "projects": ["*"],
                   "grants": ["capture"], "quotas": {"capture_events_per_second": 5}}],
      "grants_file": "/etc/grants.json", "bearer_tokens_file": "/etc/tokens",
      "quotas": {"persons_per_minute": 7, "flag_management_per_minute": 8,
                 "capture_events_per_second": 9},
      "audit_log_file": "/var/audit.jsonl"}})");
  ASSERT_TRUE(config.ok()) << config.status();
  const AuthorizationConfig& authorization = config->authorization;
  ASSERT_EQ(authorization.callers.size(), 1u);
  EXPECT_EQ(authorization.callers[0].caller, "spiffe://c/ns/a/sa/b");
  EXPECT_EQ(authorization.callers[0].projects, std::vector<std::string>{"*"});
  EXPECT_EQ(authorization.callers[0].grants, std::vector<std::string>{"capture"});
  ASSERT_TRUE(authorization.callers[0].quotas.has_value());
  EXPECT_EQ(authorization.callers[0].quotas->capture_events_per_second, 5);
  EXPECT_EQ(authorization.callers[0].quotas->persons_per_minute, 60);  // Default.
  EXPECT_EQ(authorization.grants_file, "/etc/grants.json");
  EXPECT_EQ(authorization.bearer_tokens_file, "/etc/tokens");
  EXPECT_EQ(authorization.quotas.persons_per_minute, 7);
  EXPECT_EQ(authorization.quotas.flag_management_per_minute, 8);
  EXPECT_EQ(authorization.quotas.capture_events_per_second, 9);
  EXPECT_EQ(authorization.audit_log_file, "/var/audit.jsonl");
}

TEST(ConfigTest, RefusesBadAuthorization) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"development_mode": "yes"})", "authorization.development_mode: must be true or false"},
      {R"({"callers": [{"projects": ["*"]}]})", "authorization.callers[0].caller: is required"},
      {R"({"callers": [{"caller": "x", "grants": ["user"]}]})",
       "authorization.callers[0].projects: must list project aliases"},
      {R"({"callers": [{"caller": "x", "projects": ["*"], "grants": "user"}]})",
       "authorization.callers[0].grants: must be a list of strings"},
      {R"({"quotas": {"persons_per_minute": -1}})",
       "authorization.quotas.persons_per_minute: must be between 0"},
      {R"({"develop_mode": true})", "authorization.develop_mode: unknown field"},
  };
  for (const auto& [section, message] : cases) {
    absl::StatusOr<GatewayConfig> config = ParseConfig(absl::StrCat(
        R"({"projects": [{"alias": "main", "project_id": 12, "project_api_key": {"env": "K"}}], "authorization": )",
        section, "}"));
    EXPECT_THAT(Message(config), HasSubstr(message)) << section;
  }
}

}  // namespace
}  // namespace posthog_gateway
