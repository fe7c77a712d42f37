#include "server/service/person_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"
#include "server/persons/persons.h"
#include "server/service/stream_list.h"

namespace posthog_gateway {

namespace v1 = ::posthog::v1;

PersonServiceImpl::PersonServiceImpl(const ProjectRegistry* projects, PagingConfig paging,
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
      pacers_({{paging_.persons_per_minute, absl::Minutes(1)},
               {paging_.persons_per_hour, absl::Hours(1)}},
              clock, shared_budget, "persons") {}

grpc::Status PersonServiceImpl::ListPersons(grpc::ServerContext* context,
                                            const v1::ListPersonsRequest* request,
                                            grpc::ServerWriter<v1::ListPersonsResponse>* writer) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.PersonService/ListPersons", request->project());
      !denied.ok()) {
    return denied;
  }
  // Held until the stream ends.
  absl::StatusOr<StreamLimits::Slot> slot =
      streams_->Open(authorizer_->CallerName(*context), "/posthog.v1.PersonService/ListPersons");
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::Status bounds = CheckListBounds("ListPersons", request->page_size(), request->limit());
  if (!bounds.ok()) return ToGrpcStatus(bounds);
  absl::StatusOr<std::string> query = PersonsListQuery(*request);
  if (!query.ok()) return ToGrpcStatus(query.status());

  ListCall call;
  call.client = *client;
  call.path = PersonsPath(**client);
  call.query = *query;
  // A token resumes only the list it came from: same project, same filters.
  call.scope = ListScope("persons", **client, *query);
  call.page_size = request->page_size();
  call.limit = request->limit();
  call.resume_token = request->resume_token();
  call.look_ahead = paging_.look_ahead;
  call.item_name = "person";
  ListEnv env;
  env.pacer = pacers_.For((*client)->project().alias);
  env.tokens = tokens_;
  env.clock = clock_;
  env.context = CallContextFromServer(context);
  env.fetch_pool = fetch_pool_;
  return StreamList<v1::ListPersonsResponse, v1::Person>(
      std::move(call), std::move(env), PersonFromJson,
      [](v1::ListPersonsResponse& response) { return response.add_persons(); }, writer);
}

Persons PersonServiceImpl::PersonsFor(const PostHogClient* client) {
  return Persons(client, pacers_.For(client->project().alias));
}

grpc::Status PersonServiceImpl::GetPerson(grpc::ServerContext* context,
                                          const v1::GetPersonRequest* request,
                                          v1::GetPersonResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.PersonService/GetPerson", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::StatusOr<v1::Person> person =
      PersonsFor(*client).Get(request->person(), CallContextFromServer(context));
  if (!person.ok()) return ToGrpcStatus(person.status());
  *response->mutable_person() = *std::move(person);
  return grpc::Status::OK;
}

grpc::Status PersonServiceImpl::DeletePerson(grpc::ServerContext* context,
                                             const v1::DeletePersonRequest* request,
                                             v1::DeletePersonResponse* /*response*/) {
  if (grpc::Status denied = authorizer_->Check(*context, "/posthog.v1.PersonService/DeletePerson",
                                               request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  return ToGrpcStatus(PersonsFor(*client).Delete(request->person(), request->delete_events(),
                                                 CallContextFromServer(context)));
}

grpc::Status PersonServiceImpl::UpdatePersonProperties(
    grpc::ServerContext* context, const v1::UpdatePersonPropertiesRequest* request,
    v1::UpdatePersonPropertiesResponse* /*response*/) {
  if (grpc::Status denied = authorizer_->Check(
          *context, "/posthog.v1.PersonService/UpdatePersonProperties", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  const std::vector<std::string> unset(request->unset().begin(), request->unset().end());
  return ToGrpcStatus(PersonsFor(*client).UpdateProperties(request->person(), request->set(), unset,
                                                           CallContextFromServer(context)));
}

}  // namespace posthog_gateway
