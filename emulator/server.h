#ifndef EMULATOR_SERVER_H_
#define EMULATOR_SERVER_H_

// EmulatorServer: the HTTP front of the emulator. Wires every PostHog route
// and the /_emulator/ admin routes onto a cpp-httplib server with a thread
// pool and keep-alive, and wraps each PostHog route with fault injection
// and the request log (admin routes are never faulted nor logged).
//
// Route names (used by fault rules and /_emulator/requests): capture,
// batch, users, persons, person, feature_flags, feature_flag,
// flag_definitions, local_evaluation, flags, decide.
//
// Usage: construct, Bind() (port 0 picks a free port), then Serve() on some
// thread until Stop() is called from another. The EmulatorState is not
// owned and must outlive the server.

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "emulator/handler.h"
#include "emulator/state.h"
#include "httplib.h"

namespace posthog_emulator {

struct ServerOptions {
  int threads = 32;  // one per concurrent keep-alive connection
};

class EmulatorServer final {
 public:
  EmulatorServer(EmulatorState* state, ServerOptions options);
  ~EmulatorServer();
  EmulatorServer(const EmulatorServer&) = delete;
  EmulatorServer& operator=(const EmulatorServer&) = delete;

  // Bind binds `host:port` and returns the bound port.
  absl::StatusOr<int> Bind(const std::string& host, int port);

  // Serve accepts connections until Stop(); returns false on a socket error.
  bool Serve();

  // Stop makes Serve() return; safe from any thread, idempotent.
  void Stop();

  // WaitUntilServing blocks until Serve() accepts connections (true) or
  // `*give_up` becomes true (false). `give_up` may be null.
  bool WaitUntilServing(const std::atomic<bool>* give_up = nullptr);

 private:
  void Route(const char* method, const std::string& pattern, const std::string& name,
             RouteHandler handler);
  void AddRoutes();
  void AddAdminRoutes();

  EmulatorState* const state_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace posthog_emulator

#endif  // EMULATOR_SERVER_H_
