#include "server/service/person_service.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"
#include "server/paging/page_stream.h"
#include "server/persons/persons.h"

namespace posthog_gateway {

namespace v1 = ::posthog::v1;

PersonServiceImpl::PersonServiceImpl(const ProjectRegistry* projects, PagingConfig paging,
                                     const ResumeTokenCodec* tokens, Clock* clock)
    : projects_(projects), paging_(std::move(paging)), tokens_(tokens), clock_(clock) {}

RequestPacer* PersonServiceImpl::PacerFor(const std::string& alias) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<RequestPacer>& pacer = pacers_[alias];
  if (pacer == nullptr) {
    pacer = std::make_unique<RequestPacer>(
        std::vector<RateWindow>{{paging_.persons_per_minute, absl::Minutes(1)},
                                {paging_.persons_per_hour, absl::Hours(1)}},
        clock_);
  }
  return pacer.get();
}

grpc::Status PersonServiceImpl::ListPersons(
    grpc::ServerContext* context, const v1::ListPersonsRequest* request,
    grpc::ServerWriter<v1::ListPersonsResponse>* writer) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  std::vector<FieldViolation> violations;
  if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
    violations.push_back({"page_size", absl::StrCat("must be between 0 and ", kMaxPageSize)});
  }
  if (request->limit() < 0) violations.push_back({"limit", "must not be negative"});
  if (!violations.empty()) {
    return ToGrpcStatus(InvalidArgumentWithViolations("invalid ListPersons request", violations));
  }
  absl::StatusOr<std::string> query = PersonsListQuery(*request);
  if (!query.ok()) return ToGrpcStatus(query.status());

  // A token resumes only the list it came from: same project, same filters.
  const std::string scope = absl::StrCat("persons|", (*client)->project().alias, "|",
                                         (*client)->project().project_id, "|", *query);
  ResumePosition start;
  if (!request->resume_token().empty()) {
    absl::StatusOr<ResumePosition> position =
        tokens_->Decode(request->resume_token(), scope, clock_->Now());
    if (!position.ok()) return ToGrpcStatus(position.status());
    start = *position;
  }
  PageStreamOptions options;
  options.path = PersonsPath(**client);
  options.query = *query;
  options.page_size = request->page_size() == 0 ? 100 : request->page_size();
  options.start_offset = start.offset;
  options.look_ahead = paging_.look_ahead;
  if (request->limit() > 0) {
    // The limit counts every item of the list, resumed calls included.
    options.max_items = request->limit() - start.items_streamed;
    if (options.max_items <= 0) return grpc::Status::OK;
  }
  PageStream stream(*client, std::move(options), PacerFor((*client)->project().alias), clock_,
                    CallContextFromServer(context));
  v1::ListPersonsResponse response;
  while (true) {
    absl::StatusOr<std::optional<PagedItem>> item = stream.Next();
    if (!item.ok()) return ToGrpcStatus(item.status());
    if (!item->has_value()) return grpc::Status::OK;
    absl::StatusOr<v1::Person> person = PersonFromJson((*item)->item);
    if (!person.ok()) {
      absl::Status status = absl::UnavailableError(absl::StrCat(
          "PostHog sent a person the gateway cannot read at offset ", (*item)->offset, ": ",
          person.status().message()));
      AttachErrorInfo(status, "UPSTREAM_MALFORMED_RESPONSE");
      return ToGrpcStatus(status);
    }
    const int64_t streamed = start.items_streamed + (*item)->count;
    *response.mutable_person() = *std::move(person);
    response.set_resume_token(
        tokens_->Encode(scope, {(*item)->offset + 1, streamed}, clock_->Now()));
    response.mutable_progress()->set_page((*item)->page);
    response.mutable_progress()->set_items_streamed(streamed);
    // Write blocks while the reader is slow (flow control), which holds the
    // engine's look-ahead; it fails once the caller has gone.
    if (!writer->Write(response)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away");
    }
  }
}

grpc::Status PersonServiceImpl::GetPerson(grpc::ServerContext* context,
                                          const v1::GetPersonRequest* request,
                                          v1::GetPersonResponse* response) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::StatusOr<v1::Person> person =
      Persons(*client).Get(request->person(), CallContextFromServer(context));
  if (!person.ok()) return ToGrpcStatus(person.status());
  *response->mutable_person() = *std::move(person);
  return grpc::Status::OK;
}

grpc::Status PersonServiceImpl::DeletePerson(grpc::ServerContext* context,
                                             const v1::DeletePersonRequest* request,
                                             v1::DeletePersonResponse* /*response*/) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  return ToGrpcStatus(Persons(*client).Delete(request->person(), request->delete_events(),
                                              CallContextFromServer(context)));
}

grpc::Status PersonServiceImpl::UpdatePersonProperties(
    grpc::ServerContext* context, const v1::UpdatePersonPropertiesRequest* request,
    v1::UpdatePersonPropertiesResponse* /*response*/) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  const std::vector<std::string> unset(request->unset().begin(), request->unset().end());
  return ToGrpcStatus(Persons(*client).UpdateProperties(request->person(), request->set(), unset,
                                                        CallContextFromServer(context)));
}

}  // namespace posthog_gateway
