#include "server/service/user_service.h"

#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"

namespace posthog_gateway {

UserServiceImpl::UserServiceImpl(const ProjectRegistry* projects)
    : projects_(projects) {}

grpc::Status UserServiceImpl::GetCurrentUser(
    grpc::ServerContext* context, const posthog::v1::GetCurrentUserRequest* request,
    posthog::v1::GetCurrentUserResponse* response) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::StatusOr<posthog::v1::User> user =
      (*client)->GetCurrentUser(CallContextFromServer(context));
  if (!user.ok()) return ToGrpcStatus(user.status());
  *response->mutable_user() = *std::move(user);
  return grpc::Status::OK;
}

}  // namespace posthog_gateway
