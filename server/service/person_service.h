#ifndef SERVER_SERVICE_PERSON_SERVICE_H_
#define SERVER_SERVICE_PERSON_SERVICE_H_

// PersonServiceImpl serves posthog.v1.PersonService: it validates requests,
// streams ListPersons through the shared list streaming (StreamList) and
// calls the persons operations for the unary RPCs. One RequestPacer per
// project, shared by every call and every request of a call (lists, reads,
// deletes, each property of an update), keeps them under PostHog's persons
// throttle together.
//
// Every handler first asks `authorizer` (server/authz/authorizer.h); the
// default allows every call, for tests of the handlers alone.
//
// Thread-safe. Borrows the registry, token codec, clock, authorizer, fetch
// pool and stream limits, which must outlive it.

#include "grpcpp/grpcpp.h"
#include "posthog/v1/person.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/common/clock.h"
#include "server/config/config.h"
#include "server/grpc/stream_limits.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/request_pacer.h"
#include "server/paging/resume_token.h"
#include "server/persons/persons.h"
#include "server/posthog/project_registry.h"

namespace posthog_gateway {

class PersonServiceImpl final : public posthog::v1::PersonService::Service {
 public:
  // `shared_budget` (borrowed; null: alone) is the fleet's rate budget.
  PersonServiceImpl(const ProjectRegistry* projects, PagingConfig paging,
                    const ResumeTokenCodec* tokens, Clock* clock,
                    SharedBudget* shared_budget = nullptr,
                    const Authorizer* authorizer = Authorizer::AllowAll(),
                    FetchPool* fetch_pool = nullptr,
                    StreamLimits* streams = StreamLimits::Unlimited());

  grpc::Status ListPersons(grpc::ServerContext* context,
                           const posthog::v1::ListPersonsRequest* request,
                           grpc::ServerWriter<posthog::v1::ListPersonsResponse>* writer) override;
  grpc::Status GetPerson(grpc::ServerContext* context, const posthog::v1::GetPersonRequest* request,
                         posthog::v1::GetPersonResponse* response) override;
  grpc::Status DeletePerson(grpc::ServerContext* context,
                            const posthog::v1::DeletePersonRequest* request,
                            posthog::v1::DeletePersonResponse* response) override;
  grpc::Status UpdatePersonProperties(
      grpc::ServerContext* context, const posthog::v1::UpdatePersonPropertiesRequest* request,
      posthog::v1::UpdatePersonPropertiesResponse* response) override;

 private:
  // PersonsFor is the persons operations of `client`'s project, each
  // request in its turn of the project's pacer.
  Persons PersonsFor(const PostHogClient* client);

  const ProjectRegistry* projects_;
  const PagingConfig paging_;
  const ResumeTokenCodec* tokens_;
  Clock* clock_;
  const Authorizer* authorizer_;
  // Where list pages are fetched (FetchPool::Default() when null).
  FetchPool* fetch_pool_;
  // ListPersons streams open at once (server.max_streams*).
  StreamLimits* streams_;
  // Persons requests per project, under paging.persons_per_minute/hour.
  ProjectPacers pacers_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_PERSON_SERVICE_H_
