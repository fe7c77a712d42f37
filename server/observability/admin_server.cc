#include "server/observability/admin_server.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "httplib.h"

namespace posthog_gateway {

AdminServer::AdminServer(const MetricsRegistry* registry)
    : registry_(registry), server_(std::make_unique<httplib::Server>()) {
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry_->Expose(), "text/plain; version=0.0.4");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
}

AdminServer::~AdminServer() { Stop(); }

absl::StatusOr<int> AdminServer::Start(absl::string_view host, int port) {
  const std::string address(host);
  const int bound = port == 0 ? server_->bind_to_any_port(address)
                              : (server_->bind_to_port(address, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() before the loop starts would be lost: wait for it to run.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!server_->is_running() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return bound;
}

void AdminServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace posthog_gateway
