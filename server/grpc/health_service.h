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
// Thread-safe.

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace posthog_gateway {

class HealthService final
    : public grpc::health::v1::Health::WithCallbackMethod_Check<grpc::health::v1::Health::Service> {
 public:
  HealthService() = default;

  // SetServing registers `name` (if new) with the given status.
  void SetServing(const std::string& name, bool serving);

  // Shutdown marks every name NOT_SERVING for good and ends Watch streams.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;

  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  ServingStatus StatusOf(const std::string& name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped on every change, so watchers can tell that something happened.
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_HEALTH_SERVICE_H_
