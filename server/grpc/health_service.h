#ifndef SERVER_GRPC_HEALTH_SERVICE_H_
#define SERVER_GRPC_HEALTH_SERVICE_H_

// HealthService serves grpc.health.v1.Health (gRPC doc/health-checking.md)
// in place of gRPC's default one, for one reason: on shutdown, Watch streams
// must end at once. Client-side health checking keeps one Watch stream open
// per connection; gRPC's default service holds those until the shutdown
// grace runs out, so every rollout would wait the whole grace period.
//
// Check answers the status of a registered name, NOT_FOUND otherwise. Watch
// sends the current status (SERVICE_UNKNOWN for an unregistered name), then
// every change; after Shutdown it sends NOT_SERVING and ends with OK, and a
// client's health checker moves to another backend.
//
// Both use gRPC's callback API: a Watch stream (one per client connection
// with client-side health checking) is a reactor woken by changes, not a
// thread parked for the stream's life.
//
// Thread-safe.

#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace posthog_gateway {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  HealthService() = default;

  // SetServing registers `name` (if new) with the given status.
  void SetServing(const std::string& name, bool serving);

  // Shutdown marks every name NOT_SERVING for good and ends Watch streams.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;

  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

  // The number of Watch streams open.
  size_t WatchersForTesting() const;

 private:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  class Watcher;

  ServingStatus StatusOf(const std::string& name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Tells every watcher to look again (after a change), outside mu_.
  void WakeWatchers() ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(Watcher* watcher) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_HEALTH_SERVICE_H_
