#include "server/config/config.h"

#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "server/common/status_macros.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;

absl::Status FieldError(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", path, ": ", problem));
}

// Reads optional typed members of a JSON object, failing on wrong types and on
// unknown members so that a misspelt option is an error, not a silent default.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  absl::Status CheckIsObject() const {
    if (!object_.is_object()) return FieldError(path_, "must be an object");
    return absl::OkStatus();
  }

  absl::Status CheckKnownMembers(const std::set<std::string>& known) const {
    for (const auto& item : object_.items()) {
      if (known.count(item.key()) == 0) {
        return FieldError(Child(item.key()), "unknown field");
      }
    }
    return absl::OkStatus();
  }

  const json* Find(const std::string& key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  absl::Status ReadString(const std::string& key, std::string& out) const {
    const json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_string()) return FieldError(Child(key), "must be a string");
    out = value->get<std::string>();
    return absl::OkStatus();
  }

  absl::Status ReadInt(const std::string& key, int64_t& out) const {
    const json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_number_integer()) {
      return FieldError(Child(key), "must be an integer");
    }
    out = value->get<int64_t>();
    return absl::OkStatus();
  }

  absl::Status ReadBool(const std::string& key, bool& out) const {
    const json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_boolean()) return FieldError(Child(key), "must be true or false");
    out = value->get<bool>();
    return absl::OkStatus();
  }

  // Durations are written in milliseconds, in fields whose names end in `_ms`.
  absl::Status ReadMillis(const std::string& key, absl::Duration& out) const {
    int64_t millis = -1;
    RETURN_IF_ERROR(ReadInt(key, millis));
    if (Find(key) == nullptr) return absl::OkStatus();
    if (millis < 0) return FieldError(Child(key), "must not be negative");
    out = absl::Milliseconds(millis);
    return absl::OkStatus();
  }

  std::string Child(absl::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }

 private:
  const json& object_;
  std::string path_;
};

absl::StatusOr<std::string> NormalizeBaseUrl(std::string url, const std::string& path) {
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return FieldError(path, "must be an http or https URL");
  }
  while (absl::EndsWith(url, "/")) url.pop_back();
  const absl::string_view rest = absl::StripPrefix(absl::StripPrefix(url, "http://"), "https://");
  if (rest.empty()) return FieldError(path, "has no host");
  return url;
}

absl::StatusOr<KeySource> ParseKeySource(const json* value, const std::string& path) {
  KeySource source;
  if (value == nullptr) return source;
  if (value->is_string()) {
    return FieldError(path,
                      "keys are never written in the configuration; use "
                      "{\"file\": PATH} or {\"env\": VARIABLE}");
  }
  ObjectReader reader(*value, path);
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers({"file", "env"}));
  RETURN_IF_ERROR(reader.ReadString("file", source.file));
  RETURN_IF_ERROR(reader.ReadString("env", source.env));
  if (source.file.empty() == source.env.empty()) {
    return FieldError(path, "needs exactly one of \"file\" or \"env\"");
  }
  return source;
}

absl::StatusOr<ProjectConfig> ParseProject(const json& value, const std::string& path) {
  ObjectReader reader(value, path);
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers({"alias", "project_id", "region", "ingestion_host",
                                            "app_host", "project_api_key", "personal_api_key",
                                            "feature_flags_secure_key", "disable_geoip"}));
  ProjectConfig project;
  RETURN_IF_ERROR(reader.ReadString("alias", project.alias));
  if (project.alias.empty()) return FieldError(reader.Child("alias"), "is required");
  RETURN_IF_ERROR(reader.ReadInt("project_id", project.project_id));
  if (project.project_id <= 0) {
    return FieldError(reader.Child("project_id"), "must be a positive integer");
  }

  std::string region = "us";
  RETURN_IF_ERROR(reader.ReadString("region", region));
  std::optional<RegionHosts> cloud = CloudRegionHosts(region);
  if (!cloud.has_value()) {
    return FieldError(reader.Child("region"), "must be \"us\" or \"eu\"");
  }
  project.ingestion_host = cloud->ingestion_host;
  project.app_host = cloud->app_host;
  RETURN_IF_ERROR(reader.ReadString("ingestion_host", project.ingestion_host));
  RETURN_IF_ERROR(reader.ReadString("app_host", project.app_host));
  ASSIGN_OR_RETURN(project.ingestion_host,
                   NormalizeBaseUrl(project.ingestion_host, reader.Child("ingestion_host")));
  ASSIGN_OR_RETURN(project.app_host, NormalizeBaseUrl(project.app_host, reader.Child("app_host")));

  ASSIGN_OR_RETURN(project.project_api_key,
                   ParseKeySource(reader.Find("project_api_key"), reader.Child("project_api_key")));
  ASSIGN_OR_RETURN(project.personal_api_key, ParseKeySource(reader.Find("personal_api_key"),
                                                            reader.Child("personal_api_key")));
  ASSIGN_OR_RETURN(project.feature_flags_secure_key,
                   ParseKeySource(reader.Find("feature_flags_secure_key"),
                                  reader.Child("feature_flags_secure_key")));
  RETURN_IF_ERROR(reader.ReadBool("disable_geoip", project.disable_geoip));
  if (!project.project_api_key.configured() && !project.personal_api_key.configured()) {
    return FieldError(path, "needs a project_api_key or a personal_api_key source");
  }
  return project;
}

absl::Status ParseServerTls(const json* value, const std::string& path,
                            std::optional<ServerTlsConfig>& tls) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, path);
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"cert_file", "key_file", "client_ca_file", "refresh_interval_ms", "plaintext_health_port"}));
  ServerTlsConfig config;
  RETURN_IF_ERROR(reader.ReadString("cert_file", config.cert_file));
  RETURN_IF_ERROR(reader.ReadString("key_file", config.key_file));
  RETURN_IF_ERROR(reader.ReadString("client_ca_file", config.client_ca_file));
  if (config.cert_file.empty()) return FieldError(reader.Child("cert_file"), "is required");
  if (config.key_file.empty()) return FieldError(reader.Child("key_file"), "is required");
  RETURN_IF_ERROR(reader.ReadMillis("refresh_interval_ms", config.refresh_interval));
  if (config.refresh_interval < absl::Seconds(1)) {
    return FieldError(reader.Child("refresh_interval_ms"), "must be at least 1000");
  }
  int64_t health_port = config.plaintext_health_port;
  RETURN_IF_ERROR(reader.ReadInt("plaintext_health_port", health_port));
  if (health_port < -1 || health_port > 65535) {
    return FieldError(reader.Child("plaintext_health_port"), "must be between -1 and 65535");
  }
  config.plaintext_health_port = static_cast<int>(health_port);
  tls = std::move(config);
  return absl::OkStatus();
}

absl::Status ParseServer(const json* value, ServerConfig& server) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "server");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"port", "max_receive_message_bytes", "max_connection_age_ms", "max_connection_age_grace_ms",
       "min_client_ping_interval_ms", "caller_identity", "access_log", "tls", "max_streams",
       "max_streams_per_caller", "max_handler_threads"}));
  int64_t port = server.port;
  RETURN_IF_ERROR(reader.ReadInt("port", port));
  if (port < 0 || port > 65535) {
    return FieldError(reader.Child("port"), "must be between 0 and 65535");
  }
  server.port = static_cast<int>(port);
  int64_t max_receive = server.max_receive_message_bytes;
  RETURN_IF_ERROR(reader.ReadInt("max_receive_message_bytes", max_receive));
  if (max_receive < 1024 || max_receive > (1LL << 30)) {
    return FieldError(reader.Child("max_receive_message_bytes"), "must be between 1 KiB and 1 GiB");
  }
  server.max_receive_message_bytes = static_cast<int>(max_receive);
  for (auto [name, field] : {std::pair<const char*, int64_t*>{"max_streams", &server.max_streams},
                             {"max_streams_per_caller", &server.max_streams_per_caller},
                             {"max_handler_threads", &server.max_handler_threads}}) {
    RETURN_IF_ERROR(reader.ReadInt(name, *field));
    if (*field < 0 || *field > 1000000) {
      return FieldError(reader.Child(name), "must be between 0 (no bound) and 1000000");
    }
  }
  if (server.max_handler_threads > 0 && server.max_handler_threads < 8) {
    return FieldError(reader.Child("max_handler_threads"),
                      "must be 0 (no bound) or at least 8 (gRPC's pollers take some)");
  }
  RETURN_IF_ERROR(reader.ReadMillis("max_connection_age_ms", server.max_connection_age));
  RETURN_IF_ERROR(
      reader.ReadMillis("max_connection_age_grace_ms", server.max_connection_age_grace));
  RETURN_IF_ERROR(
      reader.ReadMillis("min_client_ping_interval_ms", server.min_client_ping_interval));
  std::string caller_identity = "none";
  RETURN_IF_ERROR(reader.ReadString("caller_identity", caller_identity));
  if (caller_identity == "none") {
    server.caller_identity = CallerIdentitySource::kNone;
  } else if (caller_identity == "istio") {
    server.caller_identity = CallerIdentitySource::kIstio;
  } else if (caller_identity == "linkerd") {
    server.caller_identity = CallerIdentitySource::kLinkerd;
  } else if (caller_identity == "tls") {
    server.caller_identity = CallerIdentitySource::kTls;
  } else {
    return FieldError(reader.Child("caller_identity"),
                      "must be \"none\", \"istio\", \"linkerd\" or \"tls\"");
  }
  std::string access_log = "all";
  RETURN_IF_ERROR(reader.ReadString("access_log", access_log));
  if (access_log == "all") {
    server.access_log = AccessLog::kAll;
  } else if (access_log == "errors") {
    server.access_log = AccessLog::kErrors;
  } else if (access_log == "off") {
    server.access_log = AccessLog::kOff;
  } else {
    return FieldError(reader.Child("access_log"), "must be \"all\", \"errors\" or \"off\"");
  }
  RETURN_IF_ERROR(ParseServerTls(reader.Find("tls"), reader.Child("tls"), server.tls));
  if (server.caller_identity == CallerIdentitySource::kTls &&
      (!server.tls.has_value() || server.tls->client_ca_file.empty())) {
    return FieldError(reader.Child("caller_identity"),
                      "\"tls\" needs server.tls.client_ca_file (client certificates)");
  }
  return absl::OkStatus();
}

absl::Status ParseUpstream(const json* value, UpstreamConfig& upstream) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "upstream");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"default_timeout_ms", "deadline_margin_ms", "connect_timeout_ms", "ca_file"}));
  RETURN_IF_ERROR(reader.ReadMillis("default_timeout_ms", upstream.default_timeout));
  RETURN_IF_ERROR(reader.ReadMillis("deadline_margin_ms", upstream.deadline_margin));
  RETURN_IF_ERROR(reader.ReadMillis("connect_timeout_ms", upstream.connect_timeout));
  RETURN_IF_ERROR(reader.ReadString("ca_file", upstream.ca_file));
  return absl::OkStatus();
}

absl::Status ParseFlags(const json* value, FlagsConfig& flags) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "flags");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"poll_interval_ms", "max_backoff_ms", "request_timeout_ms", "watch_heartbeat_ms",
       "flag_called_cache_size", "flag_called_flush_interval_ms", "max_remote_evaluations"}));
  RETURN_IF_ERROR(reader.ReadMillis("poll_interval_ms", flags.poll_interval));
  RETURN_IF_ERROR(reader.ReadMillis("max_backoff_ms", flags.max_backoff));
  RETURN_IF_ERROR(reader.ReadMillis("request_timeout_ms", flags.request_timeout));
  RETURN_IF_ERROR(reader.ReadMillis("watch_heartbeat_ms", flags.watch_heartbeat));
  RETURN_IF_ERROR(reader.ReadInt("flag_called_cache_size", flags.flag_called_cache_size));
  RETURN_IF_ERROR(
      reader.ReadMillis("flag_called_flush_interval_ms", flags.flag_called_flush_interval));
  RETURN_IF_ERROR(reader.ReadInt("max_remote_evaluations", flags.max_remote_evaluations));
  if (flags.poll_interval < absl::Milliseconds(100)) {
    return FieldError("flags.poll_interval_ms", "must be at least 100");
  }
  if (flags.watch_heartbeat < absl::Milliseconds(10)) {
    return FieldError("flags.watch_heartbeat_ms", "must be at least 10");
  }
  if (flags.flag_called_cache_size < 1) {
    return FieldError("flags.flag_called_cache_size", "must be at least 1");
  }
  if (flags.max_remote_evaluations < 0) {
    return FieldError("flags.max_remote_evaluations", "must not be negative");
  }
  return absl::OkStatus();
}

absl::Status ParseOpenFeature(const json* value, OpenFeatureConfig& openfeature) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "openfeature");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers({"ofrep_port", "ofrep_threads"}));
  int64_t port = openfeature.ofrep_port;
  RETURN_IF_ERROR(reader.ReadInt("ofrep_port", port));
  RETURN_IF_ERROR(reader.ReadInt("ofrep_threads", openfeature.ofrep_threads));
  if (port < -1 || port > 65535) {
    return FieldError("openfeature.ofrep_port", "must be -1 (off), 0 or a port number");
  }
  openfeature.ofrep_port = static_cast<int>(port);
  if (openfeature.ofrep_threads < 1 || openfeature.ofrep_threads > 256) {
    return FieldError("openfeature.ofrep_threads", "must be between 1 and 256");
  }
  return absl::OkStatus();
}

absl::Status ParsePaging(const json* value, PagingConfig& paging) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "paging");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"persons_per_minute", "persons_per_hour", "flags_per_minute", "flags_per_hour", "look_ahead",
       "fetch_threads", "resume_token_ttl_ms", "resume_token_secret"}));
  // The throttle windows: a count of requests, 0 disabling the window.
  for (auto [name, field] :
       {std::pair<const char*, int*>{"persons_per_minute", &paging.persons_per_minute},
        {"persons_per_hour", &paging.persons_per_hour},
        {"flags_per_minute", &paging.flags_per_minute},
        {"flags_per_hour", &paging.flags_per_hour}}) {
    int64_t window = *field;
    RETURN_IF_ERROR(reader.ReadInt(name, window));
    if (window < 0 || window > std::numeric_limits<int>::max()) {
      return FieldError(absl::StrCat("paging.", name), "must be between 0 and 2147483647");
    }
    *field = static_cast<int>(window);
  }
  int64_t number = paging.look_ahead;
  RETURN_IF_ERROR(reader.ReadInt("look_ahead", number));
  if (number < 0 || number > 16) {
    return FieldError("paging.look_ahead", "must be between 0 and 16");
  }
  paging.look_ahead = static_cast<int>(number);
  number = paging.fetch_threads;
  RETURN_IF_ERROR(reader.ReadInt("fetch_threads", number));
  if (number < 1 || number > 256) {
    return FieldError("paging.fetch_threads", "must be between 1 and 256");
  }
  paging.fetch_threads = static_cast<int>(number);
  RETURN_IF_ERROR(reader.ReadMillis("resume_token_ttl_ms", paging.resume_token_ttl));
  if (paging.resume_token_ttl < absl::Seconds(1)) {
    return FieldError("paging.resume_token_ttl_ms", "must be at least 1000");
  }
  if (const json* secret = reader.Find("resume_token_secret"); secret != nullptr) {
    ASSIGN_OR_RETURN(paging.resume_token_secret,
                     ParseKeySource(secret, "paging.resume_token_secret"));
  }
  return absl::OkStatus();
}

absl::Status ParseCapture(const json* value, CaptureConfig& capture) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "capture");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"spool_dir", "max_spool_bytes", "segment_bytes", "batch_max_events", "batch_max_bytes",
       "flush_interval_ms", "max_in_flight_batches", "initial_backoff_ms", "max_backoff_ms",
       "max_event_bytes", "max_properties_depth", "memory_queue_bytes", "dead_letter_max_bytes",
       "max_delivered_waits"}));
  RETURN_IF_ERROR(reader.ReadString("spool_dir", capture.spool_dir));
  if (capture.spool_dir.empty()) {
    return FieldError(reader.Child("spool_dir"), "must not be empty");
  }
  struct Bounded {
    const char* key;
    int64_t* out;
    int64_t min;
    int64_t max;
    const char* range;
  };
  const Bounded bounded[] = {
      {"max_spool_bytes", &capture.max_spool_bytes, 1 << 20, int64_t{1} << 50,
       "must be at least 1 MiB"},
      {"segment_bytes", &capture.segment_bytes, 64 << 10, int64_t{1} << 32,
       "must be between 64 KiB and 4 GiB"},
      {"batch_max_events", &capture.batch_max_events, 1, 100000, "must be between 1 and 100000"},
      {"batch_max_bytes", &capture.batch_max_bytes, 1024, 20 << 20,
       "must be between 1 KiB and 20 MiB (PostHog's limit)"},
      {"max_in_flight_batches", &capture.max_in_flight_batches, 1, 64, "must be between 1 and 64"},
      {"max_event_bytes", &capture.max_event_bytes, 1024, 1000000,
       "must be between 1 KiB and 1000000 (PostHog's limit)"},
      {"max_properties_depth", &capture.max_properties_depth, 1, 100, "must be between 1 and 100"},
      {"memory_queue_bytes", &capture.memory_queue_bytes, 64 << 10, int64_t{1} << 40,
       "must be at least 64 KiB"},
      {"dead_letter_max_bytes", &capture.dead_letter_max_bytes, 64 << 10, int64_t{1} << 40,
       "must be at least 64 KiB"},
      {"max_delivered_waits", &capture.max_delivered_waits, 1, 100000,
       "must be between 1 and 100000"},
  };
  for (const Bounded& field : bounded) {
    RETURN_IF_ERROR(reader.ReadInt(field.key, *field.out));
    if (*field.out < field.min || *field.out > field.max) {
      return FieldError(reader.Child(field.key), field.range);
    }
  }
  if (capture.segment_bytes > capture.max_spool_bytes) {
    return FieldError(reader.Child("segment_bytes"), "must not exceed max_spool_bytes");
  }
  if (capture.max_event_bytes > capture.batch_max_bytes) {
    return FieldError(reader.Child("max_event_bytes"), "must not exceed batch_max_bytes");
  }
  RETURN_IF_ERROR(reader.ReadMillis("flush_interval_ms", capture.flush_interval));
  if (capture.flush_interval < absl::Milliseconds(1)) {
    return FieldError(reader.Child("flush_interval_ms"), "must be at least 1");
  }
  RETURN_IF_ERROR(reader.ReadMillis("initial_backoff_ms", capture.initial_backoff));
  RETURN_IF_ERROR(reader.ReadMillis("max_backoff_ms", capture.max_backoff));
  if (capture.initial_backoff < absl::Milliseconds(1) ||
      capture.max_backoff < capture.initial_backoff) {
    return FieldError(reader.Child("initial_backoff_ms"),
                      "must be at least 1 and at most max_backoff_ms");
  }
  return absl::OkStatus();
}

absl::Status ParseRedis(const json* value, std::optional<RedisConfig>& out) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "redis");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"address", "password", "tls", "key_prefix", "command_timeout_ms", "lease_ms"}));
  RedisConfig redis;
  RETURN_IF_ERROR(reader.ReadString("address", redis.address));
  const size_t colon = redis.address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(redis.address.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return FieldError(reader.Child("address"), "must be host:port");
  }
  if (const json* password = reader.Find("password"); password != nullptr) {
    ASSIGN_OR_RETURN(redis.password, ParseKeySource(password, "redis.password"));
  }
  if (const json* tls = reader.Find("tls"); tls != nullptr) {
    if (!tls->is_boolean()) return FieldError(reader.Child("tls"), "must be true or false");
    if (tls->get<bool>()) {
      return FieldError(reader.Child("tls"),
                        "is not supported by this build (Debian 12's hiredis 0.14 has no TLS): "
                        "reach Redis through a mesh or a TLS sidecar on loopback");
    }
  }
  RETURN_IF_ERROR(reader.ReadString("key_prefix", redis.key_prefix));
  if (redis.key_prefix.empty() || redis.key_prefix.find_first_of(" {}\r\n") != std::string::npos) {
    return FieldError(reader.Child("key_prefix"), "must be non-empty, without spaces or braces");
  }
  RETURN_IF_ERROR(reader.ReadMillis("command_timeout_ms", redis.command_timeout));
  RETURN_IF_ERROR(reader.ReadMillis("lease_ms", redis.lease));
  if (redis.command_timeout < absl::Milliseconds(1) || redis.command_timeout > absl::Seconds(1)) {
    return FieldError(reader.Child("command_timeout_ms"), "must be between 1 and 1000");
  }
  if (redis.lease < absl::Milliseconds(500)) {
    return FieldError(reader.Child("lease_ms"), "must be at least 500");
  }
  out = std::move(redis);
  return absl::OkStatus();
}

}  // namespace

std::string KeySource::Describe() const {
  if (!file.empty()) return absl::StrCat("file ", file);
  if (!env.empty()) return absl::StrCat("environment variable ", env);
  return "nowhere (not configured)";
}

const ProjectConfig* GatewayConfig::FindProject(absl::string_view alias) const {
  if (alias.empty()) alias = default_project;
  for (const ProjectConfig& project : projects) {
    if (project.alias == alias) return &project;
  }
  return nullptr;
}

std::optional<RegionHosts> CloudRegionHosts(absl::string_view region) {
  if (region == "us") {
    return RegionHosts{"https://us.i.posthog.com", "https://us.posthog.com"};
  }
  if (region == "eu") {
    return RegionHosts{"https://eu.i.posthog.com", "https://eu.posthog.com"};
  }
  return std::nullopt;
}

absl::Status ParseQuotas(const json* value, const std::string& path, CallerQuotas& quotas) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, path);
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers(
      {"persons_per_minute", "flag_management_per_minute", "capture_events_per_second"}));
  for (auto [key, field] :
       {std::pair{"persons_per_minute", &quotas.persons_per_minute},
        std::pair{"flag_management_per_minute", &quotas.flag_management_per_minute},
        std::pair{"capture_events_per_second", &quotas.capture_events_per_second}}) {
    RETURN_IF_ERROR(reader.ReadInt(key, *field));
    if (*field < 0 || *field > 1000000000) {
      return FieldError(reader.Child(key), "must be between 0 (no quota) and 1e9");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadStringList(const json* value,
                                                        const std::string& path) {
  std::vector<std::string> list;
  if (value == nullptr) return list;
  if (!value->is_array()) return FieldError(path, "must be a list of strings");
  for (size_t i = 0; i < value->size(); ++i) {
    if (!(*value)[i].is_string()) {
      return FieldError(absl::StrCat(path, "[", i, "]"), "must be a string");
    }
    list.push_back((*value)[i].get<std::string>());
  }
  return list;
}

absl::Status ParseCallers(const json* value, const std::string& path,
                          std::vector<CallerGrantConfig>& callers) {
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_array()) return FieldError(path, "must be a list of callers");
  for (size_t i = 0; i < value->size(); ++i) {
    ObjectReader reader((*value)[i], absl::StrCat(path, "[", i, "]"));
    RETURN_IF_ERROR(reader.CheckIsObject());
    RETURN_IF_ERROR(reader.CheckKnownMembers({"caller", "projects", "grants", "quotas"}));
    CallerGrantConfig caller;
    RETURN_IF_ERROR(reader.ReadString("caller", caller.caller));
    if (caller.caller.empty()) return FieldError(reader.Child("caller"), "is required");
    ASSIGN_OR_RETURN(caller.projects,
                     ReadStringList(reader.Find("projects"), reader.Child("projects")));
    if (caller.projects.empty()) {
      return FieldError(reader.Child("projects"),
                        "must list project aliases, or [\"*\"] for every project");
    }
    ASSIGN_OR_RETURN(caller.grants, ReadStringList(reader.Find("grants"), reader.Child("grants")));
    if (const json* quotas = reader.Find("quotas"); quotas != nullptr) {
      caller.quotas.emplace();
      RETURN_IF_ERROR(ParseQuotas(quotas, reader.Child("quotas"), *caller.quotas));
    }
    callers.push_back(std::move(caller));
  }
  return absl::OkStatus();
}

absl::Status ParseAuthorization(const json* value, AuthorizationConfig& authorization) {
  if (value == nullptr) return absl::OkStatus();
  ObjectReader reader(*value, "authorization");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers({"development_mode", "callers", "grants_file",
                                            "bearer_tokens_file", "quotas", "audit_log_file"}));
  if (const json* development = reader.Find("development_mode"); development != nullptr) {
    if (!development->is_boolean()) {
      return FieldError(reader.Child("development_mode"), "must be true or false");
    }
    authorization.development_mode = development->get<bool>();
  }
  RETURN_IF_ERROR(
      ParseCallers(reader.Find("callers"), reader.Child("callers"), authorization.callers));
  RETURN_IF_ERROR(reader.ReadString("grants_file", authorization.grants_file));
  RETURN_IF_ERROR(reader.ReadString("bearer_tokens_file", authorization.bearer_tokens_file));
  RETURN_IF_ERROR(ParseQuotas(reader.Find("quotas"), reader.Child("quotas"), authorization.quotas));
  RETURN_IF_ERROR(reader.ReadString("audit_log_file", authorization.audit_log_file));
  return absl::OkStatus();
}

absl::StatusOr<GatewayConfig> ParseConfig(absl::string_view json_text) {
  json root = json::parse(json_text.begin(), json_text.end(), nullptr,
                          /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError("config: not valid JSON");
  }
  ObjectReader reader(root, "");
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.CheckKnownMembers({"default_project", "projects", "server", "upstream",
                                            "flags", "paging", "capture", "openfeature", "redis",
                                            "authorization", "key_reload_interval_ms"}));

  GatewayConfig config;
  RETURN_IF_ERROR(reader.ReadString("default_project", config.default_project));
  const json* projects = reader.Find("projects");
  if (projects == nullptr || !projects->is_array() || projects->empty()) {
    return FieldError("projects", "must list at least one project");
  }
  std::set<std::string> aliases;
  for (size_t i = 0; i < projects->size(); ++i) {
    const std::string path = absl::StrCat("projects[", i, "]");
    ASSIGN_OR_RETURN(ProjectConfig project, ParseProject((*projects)[i], path));
    if (!aliases.insert(project.alias).second) {
      return FieldError(path + ".alias", absl::StrCat("duplicate alias \"", project.alias, "\""));
    }
    config.projects.push_back(std::move(project));
  }
  if (config.default_project.empty()) {
    if (config.projects.size() > 1) {
      return FieldError("default_project", "is required when there is more than one project");
    }
    config.default_project = config.projects.front().alias;
  } else if (aliases.count(config.default_project) == 0) {
    return FieldError("default_project", "names no project");
  }
  RETURN_IF_ERROR(ParseServer(reader.Find("server"), config.server));
  RETURN_IF_ERROR(ParseUpstream(reader.Find("upstream"), config.upstream));
  RETURN_IF_ERROR(ParseFlags(reader.Find("flags"), config.flags));
  RETURN_IF_ERROR(ParsePaging(reader.Find("paging"), config.paging));
  RETURN_IF_ERROR(ParseCapture(reader.Find("capture"), config.capture));
  RETURN_IF_ERROR(ParseRedis(reader.Find("redis"), config.redis));
  RETURN_IF_ERROR(ParseAuthorization(reader.Find("authorization"), config.authorization));
  RETURN_IF_ERROR(ParseOpenFeature(reader.Find("openfeature"), config.openfeature));
  RETURN_IF_ERROR(reader.ReadMillis("key_reload_interval_ms", config.key_reload_interval));
  if (config.key_reload_interval < absl::Milliseconds(10)) {
    return FieldError("key_reload_interval_ms", "must be at least 10");
  }
  return config;
}

absl::StatusOr<GatewayConfig> LoadConfigFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("config: cannot read ", path));
  }
  std::stringstream text;
  text << file.rdbuf();
  return ParseConfig(text.str());
}

absl::StatusOr<std::vector<CallerGrantConfig>> LoadGrantsFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("grants file: cannot read ", path));
  std::stringstream text;
  text << file.rdbuf();
  const std::string content = text.str();
  json root = json::parse(content.begin(), content.end(), nullptr,
                          /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("grants file ", path, ": not valid JSON"));
  }
  ObjectReader reader(root, "");
  absl::Status status = reader.CheckIsObject();
  if (status.ok()) status = reader.CheckKnownMembers({"callers"});
  std::vector<CallerGrantConfig> callers;
  if (status.ok()) status = ParseCallers(reader.Find("callers"), "callers", callers);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("grants file ", path, ": ", status.message()));
  }
  return callers;
}

}  // namespace posthog_gateway
