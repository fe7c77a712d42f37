#ifndef SERVER_GATEWAY_H_
#define SERVER_GATEWAY_H_

// Gateway is the whole process: it wires configuration, keys, the HTTP
// client, the PostHog clients, the fleet, the capture pipeline and the gRPC
// services together, and owns their lifecycle. main.cc only parses flags and
// takes signals.
//
// Start-up (Create, then Start):
// - Create checks authorization (bearer tokens, grants, audit log), builds
//   every part, starts the flag definitions polls and opens the capture
//   spool (its replay starts before anything serves). Nothing listens yet.
// - Start gives the first definitions fetches a bounded moment
//   (first_definitions_wait) so that a healthy start has them when the port
//   is known, listens, publishes health, starts OFREP, the admin server and
//   channelz (each when its port is >= 0), and the reload thread.
//
// Readiness (docs/fleet.md, docs/operations.md), on grpc.health.v1.Health:
// - `readiness` and "": SERVING once every configured key is loaded and the
//   spool is writable: what the pod itself needs. Never PostHog's state, so
//   a PostHog outage does not take capture capacity away.
// - `posthog.v1.FlagService`: readiness, and every project's definitions
//   were loaded once. `posthog.v1.FlagService/<alias>`: that project's
//   definitions were loaded once (or it has none to load).
// - `posthog.v1.CaptureService/<alias>`: PostHog does not refuse the
//   project's key. `fleet` (with Redis): Redis answers.
// - Every other service's entry follows readiness. `liveness` is always
//   SERVING.
//
// Reload: every config.key_reload_interval the key files and the bearer
// token file are re-read (key rotation); the health entries above are
// refreshed every health_interval, and only changes are published.
//
// Shutdown, in this order: readiness NOT_SERVING at once; calls are still
// served for drain_delay (endpoints notice); watch streams (Health/Watch,
// WatchFlagDefinitions, flagd's) end; calls in flight get shutdown_grace;
// the server stops. Then delivery keeps sending the capture spool until it
// is empty or spool_send_share of termination_grace has passed since
// Shutdown began (what is left stays on disk); then channelz, OFREP and the
// admin server stop (the admin port shows the drain until the end).
//
// Create and Start log why they fail (as the process always has) and return
// the error; ExitCode maps it to the process's exit status.

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/authz/audit_log.h"
#include "server/authz/authorizer.h"
#include "server/authz/bearer_tokens.h"
#include "server/capture/capture_pipeline.h"
#include "server/capture/flag_called_sink.h"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/flags/definitions_store.h"
#include "server/fleet/fleet_coordinator.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/stream_limits.h"
#include "server/http/curl_http_client.h"
#include "server/http/http_client.h"
#include "server/http/observed_http_client.h"
#include "server/observability/admin_server.h"
#include "server/observability/channelz_server.h"
#include "server/observability/metrics.h"
#include "server/observability/process_metrics.h"
#include "server/openfeature/ofrep_server.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/capture_service.h"
#include "server/service/flag_service.h"
#include "server/service/flagd_service.h"
#include "server/service/group_service.h"
#include "server/service/person_service.h"
#include "server/service/user_service.h"

namespace posthog_gateway {

// What the process is told beyond the configuration file (main's flags).
struct GatewayOptions {
  // The address every port listens on (channelz: 127.0.0.1 only).
  std::string host = "0.0.0.0";
  // OFREP's, the admin server's and channelz's ports: -1 off, 0 any free one.
  int ofrep_port = -1;
  int admin_port = -1;
  int channelz_port = -1;
  // Shutdown: how long readiness reports NOT_SERVING before the server stops
  // taking calls, and how long calls in flight then get.
  absl::Duration drain_delay = absl::Seconds(5);
  absl::Duration shutdown_grace = absl::Seconds(20);
  // Shutdown: the spool is sent until spool_send_share (0 to 1) of
  // termination_grace (the pod's terminationGracePeriodSeconds) has passed.
  absl::Duration termination_grace = absl::Seconds(40);
  double spool_send_share = 0.8;
  // Start: the longest wait for the first definitions fetches.
  absl::Duration first_definitions_wait = absl::Seconds(2);
  // How often readiness and the health entries are re-checked.
  absl::Duration health_interval = absl::Milliseconds(100);
  // The client every PostHog request goes through, not owned (tests pass a
  // fake); null: libcurl's, with the configuration's `upstream` settings.
  HttpClient* upstream_http = nullptr;
};

// ExitCode is the exit status for an error of Create or Start: 2 when the
// configuration, or a file it names, cannot work (restarting will not help);
// 1 when a resource failed (the spool, a port).
int ExitCode(const absl::Status& status);

// DrainSpool delivers the spool in `dir` (a directory another gateway left)
// with the configuration's projects and keys, and returns the exit status: 0
// once it is empty, 1 if events are left after `timeout` or the spool cannot
// be opened. Serves nothing.
int DrainSpool(GatewayConfig config, const std::string& dir, absl::Duration timeout);

class Gateway final {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(GatewayConfig config,
                                                         GatewayOptions options);
  // Shuts down at once (no drain, no spool sending) if Start was called and
  // Shutdown was not.
  ~Gateway();

  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Start listens on options.host:config.server.port (0 picks a free port)
  // and returns the gRPC port. Call once.
  absl::StatusOr<int> Start();

  // Shutdown stops the gateway in the order the class comment gives and
  // returns when it is done. Call once, after a successful Start.
  void Shutdown();

 private:
  Gateway(GatewayConfig config, GatewayOptions options);

  // Create's steps, in order.
  absl::Status SetUpAuthorization();
  absl::Status SetUpUpstream();
  absl::Status SetUpServices();
  void SetUpMetrics();

  // What readiness needs: every key loaded and the spool writable.
  bool ReadyNow() const;
  // The flag and capture health entries, from the stores and the pipeline.
  void PublishFlagHealth();
  void PublishCaptureHealth();
  // The reload thread: key rotation and health, until stopping_.
  void ReloadLoop(bool published_ready);
  void StopReloading();

  const GatewayConfig config_;
  const GatewayOptions options_;

  // Declared in the order they are built: each part outlives what uses it.
  std::unique_ptr<BearerTokens> bearer_tokens_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<AuditLog> audit_log_;
  const BuildInfo build_info_;
  MetricsRegistry metrics_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<CurlHttpClient> curl_;
  std::unique_ptr<ObservedHttpClient> http_;
  std::unique_ptr<ProjectRegistry> projects_;
  // With `redis` configured; null otherwise.
  std::unique_ptr<FleetCoordinator> fleet_;
  std::vector<std::unique_ptr<flags::DefinitionsStore>> flag_stores_;
  std::map<std::string, FlagProject> flag_projects_;
  std::unique_ptr<UserServiceImpl> user_service_;
  std::unique_ptr<CapturePipeline> capture_;
  std::unique_ptr<StreamLimits> stream_limits_;
  std::unique_ptr<CaptureServiceImpl> capture_service_;
  // After the pipeline: destroyed first, flushing into it.
  std::vector<std::unique_ptr<CaptureFlagCalledSink>> flag_sinks_;
  std::optional<ResumeTokenCodec> resume_tokens_;
  std::unique_ptr<FetchPool> fetch_pool_;
  std::unique_ptr<PersonServiceImpl> person_service_;
  std::unique_ptr<GroupServiceImpl> group_service_;
  std::unique_ptr<FlagServiceImpl> flag_service_;
  std::unique_ptr<FlagdServiceImpl> flagd_service_;
  std::unique_ptr<GatewayServer> server_;
  // When Shutdown began, in seconds since the epoch; 0 while serving.
  std::atomic<double> drain_started_{0};
  std::unique_ptr<OfrepServer> ofrep_;
  std::unique_ptr<AdminServer> admin_;
  // After the gateway's server: gRPC adds channelz to every server built
  // once it is on, and the API port must not serve it.
  std::unique_ptr<ChannelzServer> channelz_;

  bool started_ = false;
  bool shut_down_ = false;
  absl::Notification stopping_;
  std::thread reloader_;
};

}  // namespace posthog_gateway

#endif  // SERVER_GATEWAY_H_
