#ifndef SERVER_OBSERVABILITY_ADMIN_SERVER_H_
#define SERVER_OBSERVABILITY_ADMIN_SERVER_H_

// AdminServer serves the operator's endpoints on a port of their own, apart
// from the gRPC API: `GET /metrics` (Prometheus text format) and
// `GET /healthz` (200 while the process runs).
//
// Thread-safe. Borrows the registry, which must outlive the server.

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/observability/metrics.h"

namespace httplib {
class Server;
}

namespace posthog_gateway {

class AdminServer final {
 public:
  explicit AdminServer(const MetricsRegistry* registry);
  ~AdminServer();

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Start listens on host:port (0 picks a port) and returns the bound port.
  absl::StatusOr<int> Start(absl::string_view host, int port);

  // Stop stops serving; also done by the destructor.
  void Stop();

 private:
  const MetricsRegistry* registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace posthog_gateway

#endif  // SERVER_OBSERVABILITY_ADMIN_SERVER_H_
