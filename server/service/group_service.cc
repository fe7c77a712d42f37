#include "server/service/group_service.h"

#include <string>
#include <utility>
#include <vector>

#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"
#include "server/service/stream_list.h"

namespace posthog_gateway {

namespace v1 = ::posthog::v1;

GroupServiceImpl::GroupServiceImpl(const ProjectRegistry* projects, PagingConfig paging,
                                   const ResumeTokenCodec* tokens, Clock* clock,
                                   SharedBudget* shared_budget, const Authorizer* authorizer,
                                   FetchPool* fetch_pool, StreamLimits* streams)
    : projects_(projects),
      paging_(std::move(paging)),
      tokens_(tokens),
      clock_(clock),
      authorizer_(authorizer),
      fetch_pool_(fetch_pool),
      streams_(streams),
      pacers_(
          {{paging_.flags_per_minute, absl::Minutes(1)}, {paging_.flags_per_hour, absl::Hours(1)}},
          clock, shared_budget, "groups") {}

Groups GroupServiceImpl::GroupsFor(const PostHogClient* client) {
  return Groups(client, pacers_.For(client->project().alias));
}

grpc::Status GroupServiceImpl::ListGroupTypes(grpc::ServerContext* context,
                                              const v1::ListGroupTypesRequest* request,
                                              v1::ListGroupTypesResponse* response) {
  if (grpc::Status denied = authorizer_->Check(*context, "/posthog.v1.GroupService/ListGroupTypes",
                                               request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::StatusOr<std::vector<v1::GroupType>> types =
      GroupsFor(*client).ListTypes(CallContextFromServer(context));
  if (!types.ok()) return ToGrpcStatus(types.status());
  for (v1::GroupType& type : *types) *response->add_group_types() = std::move(type);
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::ListGroups(grpc::ServerContext* context,
                                          const v1::ListGroupsRequest* request,
                                          grpc::ServerWriter<v1::ListGroupsResponse>* writer) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.GroupService/ListGroups", request->project());
      !denied.ok()) {
    return denied;
  }
  // Held until the stream ends.
  absl::StatusOr<StreamLimits::Slot> slot =
      streams_->Open(authorizer_->CallerName(*context), "/posthog.v1.GroupService/ListGroups");
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::Status bounds = CheckListBounds("ListGroups", 0, request->limit());
  if (!bounds.ok()) return ToGrpcStatus(bounds);
  absl::StatusOr<std::string> query = GroupsListQuery(*request);
  if (!query.ok()) return ToGrpcStatus(query.status());

  ListCall call;
  call.client = *client;
  call.path = GroupsPath(**client);
  call.query = *query;
  // A token resumes only the list it came from: same project, type and
  // filters (the query holds all three).
  call.scope = ListScope("groups", **client, *query);
  call.limit = request->limit();
  call.resume_token = request->resume_token();
  call.look_ahead = paging_.look_ahead;
  call.item_name = "group";
  call.pagination = Pagination::kCursor;
  call.item_id = GroupListItemId;
  ListEnv env;
  env.pacer = pacers_.For((*client)->project().alias);
  env.tokens = tokens_;
  env.clock = clock_;
  env.context = CallContextFromServer(context);
  env.fetch_pool = fetch_pool_;
  return StreamList<v1::ListGroupsResponse, v1::Group>(
      std::move(call), std::move(env), GroupFromJson,
      [](v1::ListGroupsResponse& response) { return response.add_groups(); }, writer);
}

grpc::Status GroupServiceImpl::GetGroup(grpc::ServerContext* context,
                                        const v1::GetGroupRequest* request,
                                        v1::GetGroupResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.GroupService/GetGroup", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::StatusOr<v1::Group> group = GroupsFor(*client).Get(
      request->group_type_index(), request->group_key(), CallContextFromServer(context));
  if (!group.ok()) return ToGrpcStatus(group.status());
  *response->mutable_group() = *std::move(group);
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::CreateGroup(grpc::ServerContext* context,
                                           const v1::CreateGroupRequest* request,
                                           v1::CreateGroupResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.GroupService/CreateGroup", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::StatusOr<v1::Group> group =
      GroupsFor(*client).Create(request->group_type_index(), request->group_key(),
                                request->group_properties(), CallContextFromServer(context));
  if (!group.ok()) return ToGrpcStatus(group.status());
  *response->mutable_group() = *std::move(group);
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::UpdateGroupProperties(
    grpc::ServerContext* context, const v1::UpdateGroupPropertiesRequest* request,
    v1::UpdateGroupPropertiesResponse* /*response*/) {
  if (grpc::Status denied = authorizer_->Check(
          *context, "/posthog.v1.GroupService/UpdateGroupProperties", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  const std::vector<std::string> unset(request->unset().begin(), request->unset().end());
  return ToGrpcStatus(GroupsFor(*client).UpdateProperties(request->group_type_index(),
                                                          request->group_key(), request->set(),
                                                          unset, CallContextFromServer(context)));
}

}  // namespace posthog_gateway
