#include "server/service/user_service.h"

#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"
#include "server/users/users.h"

namespace posthog_gateway {

UserServiceImpl::UserServiceImpl(const ProjectRegistry* projects, absl::Duration cache_ttl,
                                 Clock* clock, const Authorizer* authorizer)
    : projects_(projects),
      cache_ttl_(cache_ttl),
      authorizer_(authorizer),
      cache_(cache_ttl, clock) {}

grpc::Status UserServiceImpl::GetCurrentUser(grpc::ServerContext* context,
                                             const posthog::v1::GetCurrentUserRequest* request,
                                             posthog::v1::GetCurrentUserResponse* response) {
  if (grpc::Status denied = authorizer_->Check(*context, "/posthog.v1.UserService/GetCurrentUser",
                                               request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  const CallContext call = CallContextFromServer(context);
  auto load = [&] { return posthog_gateway::GetCurrentUser(**client, call); };
  absl::StatusOr<posthog::v1::User> user =
      cache_ttl_ > absl::ZeroDuration() ? cache_.Get((*client)->project().alias, load) : load();
  if (!user.ok()) return ToGrpcStatus(user.status());
  *response->mutable_user() = *std::move(user);
  return grpc::Status::OK;
}

}  // namespace posthog_gateway
