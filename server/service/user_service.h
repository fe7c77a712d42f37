#ifndef SERVER_SERVICE_USER_SERVICE_H_
#define SERVER_SERVICE_USER_SERVICE_H_

// UserServiceImpl serves posthog.v1.UserService. GetCurrentUser answers from
// a short-lived per-project cache whose misses are single-flight, so a burst
// of calls costs PostHog one request (a profile changed in PostHog shows
// after at most `cache_ttl`; zero disables the cache).
//
// GetCurrentUser first asks `authorizer` (server/authz/authorizer.h); the
// default allows every call, for tests of the handler alone.
//
// Thread-safe; borrows the registry, clock and authorizer, which must
// outlive it.

#include "grpcpp/grpcpp.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/common/clock.h"
#include "server/common/single_flight_cache.h"
#include "server/posthog/project_registry.h"

namespace posthog_gateway {

class UserServiceImpl final : public posthog::v1::UserService::Service {
 public:
  explicit UserServiceImpl(const ProjectRegistry* projects,
                           absl::Duration cache_ttl = absl::Seconds(5), Clock* clock = RealClock(),
                           const Authorizer* authorizer = Authorizer::AllowAll());

  grpc::Status GetCurrentUser(grpc::ServerContext* context,
                              const posthog::v1::GetCurrentUserRequest* request,
                              posthog::v1::GetCurrentUserResponse* response) override;

 private:
  const ProjectRegistry* projects_;
  const absl::Duration cache_ttl_;
  const Authorizer* authorizer_;
  SingleFlightCache<posthog::v1::User> cache_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_USER_SERVICE_H_
