#ifndef SERVER_SERVICE_GROUP_SERVICE_H_
#define SERVER_SERVICE_GROUP_SERVICE_H_

// GroupServiceImpl serves posthog.v1.GroupService: it validates requests,
// streams ListGroups through the shared list streaming (StreamList, cursor
// pagination) and calls the groups operations for the unary RPCs. One
// RequestPacer per project, shared by every call and every request of a
// call, keeps them under PostHog's default private-API throttles (the
// groups endpoints have no throttle of their own), configured as
// paging.flags_per_minute/hour.
//
// Every handler first asks `authorizer` (server/authz/authorizer.h); the
// default allows every call, for tests of the handlers alone.
//
// Thread-safe. Borrows the registry, token codec, clock and authorizer,
// which must outlive it.

#include "grpcpp/grpcpp.h"
#include "posthog/v1/group.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/common/clock.h"
#include "server/config/config.h"
#include "server/groups/groups.h"
#include "server/grpc/stream_limits.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/request_pacer.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"

namespace posthog_gateway {

class GroupServiceImpl final : public posthog::v1::GroupService::Service {
 public:
  // `shared_budget` (borrowed; null: alone) is the fleet's rate budget.
  GroupServiceImpl(const ProjectRegistry* projects, PagingConfig paging,
                   const ResumeTokenCodec* tokens, Clock* clock,
                   SharedBudget* shared_budget = nullptr,
                   const Authorizer* authorizer = Authorizer::AllowAll(),
                   FetchPool* fetch_pool = nullptr,
                   StreamLimits* streams = StreamLimits::Unlimited());

  grpc::Status ListGroupTypes(grpc::ServerContext* context,
                              const posthog::v1::ListGroupTypesRequest* request,
                              posthog::v1::ListGroupTypesResponse* response) override;
  grpc::Status ListGroups(grpc::ServerContext* context,
                          const posthog::v1::ListGroupsRequest* request,
                          grpc::ServerWriter<posthog::v1::ListGroupsResponse>* writer) override;
  grpc::Status GetGroup(grpc::ServerContext* context, const posthog::v1::GetGroupRequest* request,
                        posthog::v1::GetGroupResponse* response) override;
  grpc::Status CreateGroup(grpc::ServerContext* context,
                           const posthog::v1::CreateGroupRequest* request,
                           posthog::v1::CreateGroupResponse* response) override;
  grpc::Status UpdateGroupProperties(grpc::ServerContext* context,
                                     const posthog::v1::UpdateGroupPropertiesRequest* request,
                                     posthog::v1::UpdateGroupPropertiesResponse* response) override;

 private:
  // GroupsFor is the groups operations of `client`'s project, each request
  // in its turn of the project's pacer.
  Groups GroupsFor(const PostHogClient* client);

  const ProjectRegistry* projects_;
  const PagingConfig paging_;
  const ResumeTokenCodec* tokens_;
  Clock* clock_;
  const Authorizer* authorizer_;
  // Where list pages are fetched (FetchPool::Default() when null).
  FetchPool* fetch_pool_;
  // ListGroups streams open at once (server.max_streams*).
  StreamLimits* streams_;
  ProjectPacers pacers_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_GROUP_SERVICE_H_
