#ifndef SERVER_CONFIG_CONFIG_H_
#define SERVER_CONFIG_CONFIG_H_

// The gateway's configuration: which PostHog projects it serves, where their
// hosts are and where each key is read from. Keys themselves are never in the
// configuration, only the file or environment variable holding them.
//
// The format is JSON; deploy/gateway.example.json documents every field.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace posthog_gateway {

// Where one key is read from: exactly one of a file path (re-read on change,
// the way Kubernetes mounts secrets) or an environment variable (read once).
struct KeySource {
  std::string file;
  std::string env;

  bool configured() const { return !file.empty() || !env.empty(); }
  // Where the key comes from, for messages (never the key itself).
  std::string Describe() const;
};

// One PostHog project the gateway serves.
struct ProjectConfig {
  // The name callers use in the `project` field of every request.
  std::string alias;
  // PostHog's numeric project (team) id, the `:id` in `/api/projects/:id/`.
  int64_t project_id = 0;
  // Base URL of the public endpoints: capture, /flags, /flags/definitions.
  std::string ingestion_host;
  // Base URL of the private API (/api/...), the only place the personal API
  // key is ever sent.
  std::string app_host;
  // The public project API key (`phc_...`).
  KeySource project_api_key;
  // The secret personal API key (`phx_...`).
  KeySource personal_api_key;
  // The feature-flags secure key (`phs_...`), optional.
  KeySource feature_flags_secure_key;
  // Whether PostHog's GeoIP enrichment is off for this project's events and
  // remote flag evaluations unless a call asks for it (GEOIP_MODE_ENABLED).
  // True by default, as in PostHog's server SDKs: the address PostHog sees is
  // the gateway's. Events carrying `$ip` are geolocated from it anyway.
  bool disable_geoip = true;
};

// Which service mesh, if any, terminates mTLS in front of the gateway and so
// can be trusted to name the caller in a header; or the gateway's own mTLS.
enum class CallerIdentitySource {
  kNone,     // No mesh: caller headers are ignored (anyone could send them).
  kIstio,    // The last element of x-forwarded-client-cert (its URI=spiffe://...).
  kLinkerd,  // l5d-client-id.
  kTls,      // The caller's client certificate (server.tls with a client CA).
};

// Which calls get an access-log line.
enum class AccessLog {
  kAll,     // Every call (health checks and reflection never).
  kErrors,  // Calls that end with a status other than OK.
  kOff,
};

// TLS on the gRPC port, for deployments without a service mesh (behind a
// mesh the sidecar does mTLS: leave it off). The files are PEM and are
// re-read every `refresh_interval`, so a renewed certificate (cert-manager,
// a rotated Secret) is served to new connections without a restart.
struct ServerTlsConfig {
  // The certificate chain and its private key.
  std::string cert_file;
  std::string key_file;
  // When set, callers must present a certificate this CA bundle signed (mTLS).
  std::string client_ca_file;
  absl::Duration refresh_interval = absl::Minutes(1);
  // A plaintext port serving only grpc.health.v1.Health, for the kubelet's
  // gRPC probes (which cannot speak TLS): -1 none, 0 any free port (its
  // number is logged; tests use it), else that port.
  int plaintext_health_port = -1;
};

// The gRPC server's settings.
struct ServerConfig {
  int port = 50051;
  // Largest request message accepted, in bytes (gRPC's own default: a
  // request's memory is a few times its size, issue 13).
  int max_receive_message_bytes = 4 * 1024 * 1024;
  // Streams open at once (lists, capture streams, definition watches), in
  // total and per caller (as the authorizer names it; calls without an
  // identity count towards the total only); past either RESOURCE_EXHAUSTED.
  // 0: no cap.
  int64_t max_streams = 1000;
  int64_t max_streams_per_caller = 200;
  // Threads of the gRPC server's synchronous handlers (a list stream holds
  // one for its whole life, a unary call for its duration), through a
  // grpc::ResourceQuota: past it a call is RESOURCE_EXHAUSTED, never an
  // unbounded thread count. 0: no bound.
  int64_t max_handler_threads = 512;
  // Connections are closed (with GOAWAY) after this age so that long-lived
  // HTTP/2 connections rebalance across replicas (gRFC A9); zero disables.
  absl::Duration max_connection_age = absl::Minutes(5);
  // How long in-flight calls get to finish after max_connection_age.
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // Pings from clients more often than this are refused (GOAWAY
  // too_many_pings); clients should keep their keepalive interval above it.
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  // Where the caller's identity, logged with each call, comes from.
  CallerIdentitySource caller_identity = CallerIdentitySource::kNone;
  // Which calls are logged (metrics count every call whatever this says).
  AccessLog access_log = AccessLog::kAll;
  // Plaintext (h2c) when absent.
  std::optional<ServerTlsConfig> tls;
};

// Settings of the HTTP client that talks to PostHog.
struct UpstreamConfig {
  // The timeout of a request when the caller set no deadline.
  absl::Duration default_timeout = absl::Seconds(30);
  // Subtracted from the caller's remaining deadline so that the gateway can
  // still answer before the caller gives up.
  absl::Duration deadline_margin = absl::Milliseconds(50);
  absl::Duration connect_timeout = absl::Seconds(5);
  // A CA bundle for TLS verification; the system's when empty.
  std::string ca_file;
};

// Feature flags: definitions polling, watches and `$feature_flag_called`.
struct FlagsConfig {
  // How often each project's definitions are polled (at least 100 ms).
  absl::Duration poll_interval = absl::Seconds(30);
  // The longest wait between polls while PostHog refuses (401/403/429).
  absl::Duration max_backoff = absl::Seconds(60);
  // Timeout of one definitions request.
  absl::Duration request_timeout = absl::Seconds(10);
  // How often WatchFlagDefinitions sends a heartbeat when nothing changed.
  absl::Duration watch_heartbeat = absl::Seconds(15);
  // Entries of the `$feature_flag_called` deduplication cache.
  int64_t flag_called_cache_size = 50000;
  // How often queued `$feature_flag_called` events are sent.
  absl::Duration flag_called_flush_interval = absl::Seconds(1);
  // Evaluations waiting for PostHog (`POST /flags`) at once, each on a
  // thread of its own; past this, undecided flags are answered with an
  // error at once rather than queue behind a slow PostHog.
  int64_t max_remote_evaluations = 256;
};

// How lists (ListPersons, ListFlags) page through PostHog.
struct PagingConfig {
  // PostHog's throttles for persons, per project (docs/posthog-api.md §5, §6.4);
  // the gateway stays under them. Zero disables that window.
  int persons_per_minute = 240;
  int persons_per_hour = 1200;
  // The same for flag lists (ListFlags) and, with a pacer of their own, the
  // groups calls (GroupService): these endpoints have PostHog's default
  // private-API throttles, 480/minute and 4800/hour (docs/posthog-api.md
  // §6.4), shared with every other default-throttled call made with the same
  // personal key.
  int flags_per_minute = 480;
  int flags_per_hour = 4800;
  // Pages fetched concurrently ahead of the one being streamed.
  int look_ahead = 3;
  // Threads fetching list pages, shared by every list stream of the
  // process (server/paging/fetch_pool.h): the most pages fetched at once.
  int fetch_threads = 16;
  // How long a resume token stays valid.
  absl::Duration resume_token_ttl = absl::Hours(24);
  // The HMAC secret of resume tokens. When not configured a random one is made
  // per process, so tokens resume only on the replica that made them:
  // replicas behind one load balancer need a shared secret.
  KeySource resume_token_secret;
};

// Settings of capture: the on-disk spool and the delivery to PostHog.
struct CaptureConfig {
  // Where acknowledged events wait until PostHog accepted them.
  std::string spool_dir = "/var/lib/posthog-gateway/spool";
  // The spool's size bound; beyond it capture answers RESOURCE_EXHAUSTED.
  int64_t max_spool_bytes = int64_t{1} << 30;
  // A spool segment file is closed once it reaches this size.
  int64_t segment_bytes = 16 << 20;
  // A batch to PostHog closes at this many events...
  int64_t batch_max_events = 1000;
  // ...or this many bytes of (uncompressed) events (PostHog's hard cap is 20 MiB)...
  int64_t batch_max_bytes = 5 << 20;
  // ...or when its oldest event has waited this long.
  absl::Duration flush_interval = absl::Milliseconds(200);
  // Batches of one project being sent at the same time.
  int64_t max_in_flight_batches = 4;
  // Event bytes a project keeps in memory; a larger backlog stays on disk
  // and is read back from the spool, so memory stays bounded in an outage.
  int64_t memory_queue_bytes = 64 << 20;
  // Backoff between retries: initial delay, doubled up to the maximum, with
  // full jitter; a longer Retry-After wins.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
  // An event whose JSON is larger than this is refused (PostHog's producer
  // limit is about 1 MB).
  int64_t max_event_bytes = 900 * 1024;
  // Properties nested deeper than this are refused.
  int64_t max_properties_depth = 32;
  // The dead-letter file is rotated (to dead-letter.jsonl.1, replacing the
  // previous one) before it would grow past this.
  int64_t dead_letter_max_bytes = 64 << 20;
  // ACK_MODE_DELIVERED calls (and stream messages) waiting for PostHog at
  // once, a thread each; past it RESOURCE_EXHAUSTED, nothing stored.
  int64_t max_delivered_waits = 256;
};

// Per-caller quotas on what spends a budget every caller shares (PostHog's
// persons and private-API throttles, capture's delivery). Zero: no quota.
struct CallerQuotas {
  // Calls of the persons groups (ListPersons, GetPerson, DeletePerson,
  // UpdatePersonProperties) per minute, per project.
  int64_t persons_per_minute = 60;
  // Calls of the flag-management group per minute, per project.
  int64_t flag_management_per_minute = 120;
  // Events captured per second, per project (burst: one second's worth).
  int64_t capture_events_per_second = 2000;
};

// What one caller may do: server/authz/grants.h names the grants and which
// RPCs each covers.
struct CallerGrantConfig {
  // The identity, as the configured source names it: a SPIFFE URI
  // (`spiffe://cluster.local/ns/shop/sa/checkout`), a Linkerd identity, a
  // certificate subject, or a bearer-token caller name.
  std::string caller;
  // Project aliases; `*` alone means every project.
  std::vector<std::string> projects;
  // Grant names, e.g. "capture", "persons_read".
  std::vector<std::string> grants;
  // The caller's own quotas, replacing authorization.quotas.
  std::optional<CallerQuotas> quotas;
};

// Who may call what (docs/security.md).
struct AuthorizationConfig {
  // No authorization at all: every call is allowed, whoever made it. For a
  // laptop or a test; the gateway warns at start-up when it listens beyond
  // loopback with it on.
  bool development_mode = false;
  // Callers and their grants, here and/or in grants_file (a JSON object
  // {"callers": [...]}, read at start-up, e.g. a mounted ConfigMap).
  std::vector<CallerGrantConfig> callers;
  std::string grants_file;
  // `authorization: Bearer` tokens per calling service, as SHA-256 hashes
  // (server/authz/bearer_tokens.h); re-read every key_reload_interval.
  std::string bearer_tokens_file;
  // Quotas of every caller that has none of its own.
  CallerQuotas quotas;
  // Where audit records (every write and delete) go: a file (JSON lines,
  // appended, mode 0600), or "" for stderr, each line marked
  // {"log":"audit"}.
  std::string audit_log_file;
};

// Optional coordination of a fleet of replicas through Redis (docs/fleet.md):
// one PostHog rate budget per project, one flag definitions poll per project
// per interval. Without it each replica acts alone.
struct RedisConfig {
  // `host:port` of the Redis server (7.x).
  std::string address;
  // Redis' AUTH password (requirepass), never in the configuration itself.
  KeySource password;
  // Names every key of this fleet: `<key_prefix>:<project_id>:...`.
  std::string key_prefix = "posthog-gateway";
  // Each Redis command's deadline: Redis trouble never holds a call longer.
  absl::Duration command_timeout = absl::Milliseconds(50);
  // How long a definitions poller's lease lasts without renewal: when its
  // holder dies another replica polls within this time.
  absl::Duration lease = absl::Seconds(10);
};

// OpenFeature's front doors (docs/openfeature.md). flagd's protocol is on
// the gRPC port; OFREP has a port of its own, off by default.
struct OpenFeatureConfig {
  // OFREP's HTTP port: -1 off, 0 any free port.
  int ofrep_port = -1;
  // Threads serving OFREP requests.
  int64_t ofrep_threads = 8;
};

struct GatewayConfig {
  // The alias used when a request leaves `project` empty.
  std::string default_project;
  std::vector<ProjectConfig> projects;
  ServerConfig server;
  UpstreamConfig upstream;
  FlagsConfig flags;
  PagingConfig paging;
  CaptureConfig capture;
  // Fleet coordination; absent: every replica acts alone.
  std::optional<RedisConfig> redis;
  AuthorizationConfig authorization;
  OpenFeatureConfig openfeature;
  // How often key files are checked for rotation.
  absl::Duration key_reload_interval = absl::Seconds(10);

  // FindProject returns the project with `alias`, or the default project when
  // `alias` is empty; nullptr when there is none.
  const ProjectConfig* FindProject(absl::string_view alias) const;
};

// The PostHog Cloud hosts of a region ("us" or "eu").
struct RegionHosts {
  std::string ingestion_host;
  std::string app_host;
};
std::optional<RegionHosts> CloudRegionHosts(absl::string_view region);

// ParseConfig parses and validates the JSON text of a configuration. Errors
// are INVALID_ARGUMENT and name the offending field, e.g.
// `projects[0].app_host: must be an http or https URL`.
absl::StatusOr<GatewayConfig> ParseConfig(absl::string_view json_text);

// LoadConfigFile reads and parses the file at `path`.
absl::StatusOr<GatewayConfig> LoadConfigFile(const std::string& path);

// LoadGrantsFile reads authorization.grants_file, `{"callers": [...]}`, each
// caller as in authorization.callers; errors name the file and the field.
absl::StatusOr<std::vector<CallerGrantConfig>> LoadGrantsFile(const std::string& path);

}  // namespace posthog_gateway

#endif  // SERVER_CONFIG_CONFIG_H_
