// The PostHog gRPC gateway: wires configuration, keys, the HTTP client, the
// PostHog clients and the gRPC services together, then serves until SIGTERM.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "posthog/v1/person.grpc.pb.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/capture/capture_pipeline.h"
#include "server/common/log.h"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/grpc/gateway_server.h"
#include "server/http/curl_http_client.h"
#include "server/posthog/project_registry.h"
#include "server/service/capture_service.h"
#include "server/service/user_service.h"

ABSL_FLAG(std::string, config, "",
          "Path of the JSON configuration; defaults to $POSTHOG_GATEWAY_CONFIG, "
          "then /etc/posthog-gateway/config.json.");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, -1, "Port to listen on (0 picks one); overrides server.port.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving.");
ABSL_FLAG(absl::Duration, drain_delay, absl::Seconds(5),
          "On SIGTERM, how long readiness reports NOT_SERVING before the server "
          "stops accepting calls, so that endpoints can update.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(20),
          "On SIGTERM, how long calls in flight get to finish.");

namespace posthog_gateway {
namespace {

constexpr char kVersion[] = "0.1.0";

std::string ConfigPath() {
  std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    const char* env = std::getenv("POSTHOG_GATEWAY_CONFIG");
    path = env != nullptr ? env : "/etc/posthog-gateway/config.json";
  }
  return path;
}

bool WritePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream file(temp);
    file << port << "\n";
    if (!file) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

int Run() {
  const std::string config_path = ConfigPath();
  absl::StatusOr<GatewayConfig> config = LoadConfigFile(config_path);
  if (!config.ok()) {
    LogError("cannot load configuration", {{"path", config_path},
                                           {"error", std::string(config.status().message())}});
    return 2;
  }
  if (absl::GetFlag(FLAGS_port) >= 0) config->server.port = absl::GetFlag(FLAGS_port);

  KeyStore keys(*config);
  CurlHttpClientOptions http_options;
  http_options.default_timeout = config->upstream.default_timeout;
  http_options.connect_timeout = config->upstream.connect_timeout;
  http_options.ca_file = config->upstream.ca_file;
  http_options.user_agent = absl::StrCat("posthog-grpc-gateway/", kVersion);
  CurlHttpClient http(http_options);
  ProjectRegistry projects(*config, &keys, &http);

  UserServiceImpl user_service(&projects);
  // Capture: replays the spool before serving, so that events acknowledged
  // before a restart are on their way first.
  absl::StatusOr<std::unique_ptr<CapturePipeline>> capture =
      CapturePipeline::Create(*config, &projects, &keys, kVersion);
  if (!capture.ok()) {
    LogError("cannot open the capture spool",
             {{"dir", config->capture.spool_dir},
              {"error", std::string(capture.status().message())}});
    return 1;
  }
  CaptureServiceImpl capture_service(capture->get());
  // Defined by the API, implemented by later work: they answer UNIMPLEMENTED.
  posthog::v1::PersonService::Service person_service;
  posthog::v1::FlagService::Service flag_service;

  GatewayServer server(
      config->server,
      {{posthog::v1::UserService::service_full_name(), &user_service},
       {posthog::v1::CaptureService::service_full_name(), &capture_service},
       {posthog::v1::PersonService::service_full_name(), &person_service},
       {posthog::v1::FlagService::service_full_name(), &flag_service}});
  absl::StatusOr<int> port = server.Start(absl::GetFlag(FLAGS_host), config->server.port);
  if (!port.ok()) {
    LogError("cannot start", {{"error", std::string(port.status().message())}});
    return 1;
  }
  server.SetReady(keys.AllLoaded());
  // Capture's readiness per project: NOT_SERVING while PostHog refuses the
  // project's key (its events stay spooled).
  auto publish_capture_health = [&] {
    for (const ProjectConfig& project : config->projects) {
      server.SetServingStatus(
          absl::StrCat(posthog::v1::CaptureService::service_full_name(), "/", project.alias),
          !(*capture)->ProjectPaused(project.alias));
    }
  };
  publish_capture_health();
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file);
      !port_file.empty() && !WritePortFile(port_file, *port)) {
    LogError("cannot write the port file", {{"path", port_file}});
    return 1;
  }

  // Key rotation: re-read key files periodically; readiness follows whether
  // every configured key is loaded.
  absl::Notification stopping;
  std::thread key_reloader([&] {
    bool ready = keys.AllLoaded();
    while (!stopping.WaitForNotificationWithTimeout(config->key_reload_interval)) {
      keys.Reload();
      publish_capture_health();
      // Only changes are published: health Watch streams see each update.
      if (keys.AllLoaded() != ready) {
        ready = !ready;
        server.SetReady(ready);
      }
    }
  });

  // SIGTERM and SIGINT are blocked in every thread (see main) and taken here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LogInfo("shutting down", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});

  stopping.Notify();
  key_reloader.join();
  server.Shutdown(absl::GetFlag(FLAGS_drain_delay), absl::GetFlag(FLAGS_shutdown_grace));
  return 0;
}

}  // namespace
}  // namespace posthog_gateway

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The PostHog gRPC gateway.\n"
      "Usage: posthog_gateway --config=PATH [--port=N] [--port_file=PATH]");
  absl::ParseCommandLine(argc, argv);
  // Block the shutdown signals before any thread starts, so every thread
  // inherits the mask and only Run's sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return posthog_gateway::Run();
}
