#ifndef SERVER_SERVICE_USER_SERVICE_H_
#define SERVER_SERVICE_USER_SERVICE_H_

// UserServiceImpl serves posthog.v1.UserService. Thread-safe; borrows the
// registry, which must outlive it.

#include "grpcpp/grpcpp.h"
#include "posthog/v1/user.grpc.pb.h"
#include "server/posthog/project_registry.h"

namespace posthog_gateway {

class UserServiceImpl final : public posthog::v1::UserService::Service {
 public:
  explicit UserServiceImpl(const ProjectRegistry* projects);

  grpc::Status GetCurrentUser(grpc::ServerContext* context,
                              const posthog::v1::GetCurrentUserRequest* request,
                              posthog::v1::GetCurrentUserResponse* response) override;

 private:
  const ProjectRegistry* projects_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_USER_SERVICE_H_
