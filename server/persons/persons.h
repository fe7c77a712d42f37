#ifndef SERVER_PERSONS_PERSONS_H_
#define SERVER_PERSONS_PERSONS_H_

// Typed PostHog persons operations on a PostHogClient (docs/posthog-api.md §5),
// through `/api/projects/{project_id}/persons/` with the personal API key, and
// the conversion of PostHog's person JSON to posthog.v1.Person.
//
// Listing is not here: ListPersons streams through the paging engine
// (server/paging/page_stream.h) with the path and query built here.
//
// Thread-safe; borrows the PostHogClient.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/person.pb.h"
#include "server/paging/request_pacer.h"
#include "server/posthog/call_context.h"
#include "server/posthog/posthog_client.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway {

// PersonFromJson converts a list item or a retrieved person. PostHog's list
// items carry the uuid in `id`; retrieved persons a numeric `id` and `uuid`.
// INVALID_ARGUMENT when `json` is not a person object.
absl::StatusOr<posthog::v1::Person> PersonFromJson(const nlohmann::json& json);

// PersonsUrl is the persons endpoint of the client's project
// (`/api/projects/{id}/persons/`); PersonsPath its encoded path.
UpstreamUrl PersonsUrl(const PostHogClient& client);
std::string PersonsPath(const PostHogClient& client);

// PersonsListQuery encodes the request's filters as PostHog's list query
// (distinct_id, email, search, properties as a JSON array, cohort), without
// limit and offset. INVALID_ARGUMENT (with BadRequest) for a bad filter.
absl::StatusOr<std::string> PersonsListQuery(const posthog::v1::ListPersonsRequest& request);

class Persons final {
 public:
  // With a `pacer`, each request waits for its turn (an update is one
  // request per property): PostHog throttles the persons endpoints under one
  // per-key limit (docs/posthog-api.md §6.4).
  explicit Persons(const PostHogClient* client, RequestPacer* pacer = nullptr)
      : client_(client), pacer_(pacer) {}

  // Get retrieves a person by uuid or numeric id, or finds one by distinct id
  // through the list filter. NOT_FOUND when none matches.
  //
  // For every operation, a uuid that is not a UUID or an id that is not
  // positive is INVALID_ARGUMENT with a BadRequest on `person.uuid` or
  // `person.id`, before any request; a distinct id is only ever sent in the
  // lookup's query, and a uuid PostHog answers it with that is not a UUID is
  // UNAVAILABLE (UPSTREAM_MALFORMED_RESPONSE), never used in a path.
  absl::StatusOr<posthog::v1::Person> Get(const posthog::v1::PersonRef& ref,
                                          const CallContext& context) const;

  // Delete deletes a person; with `delete_events` PostHog also queues the
  // deletion of their events.
  absl::Status Delete(const posthog::v1::PersonRef& ref, bool delete_events,
                      const CallContext& context) const;

  // UpdateProperties sets each property of `set` (update_property) and
  // removes each of `unset` (delete_property), one PostHog call each, in
  // order. More than kMaxPersonPropertyChanges changes in all is
  // INVALID_ARGUMENT and nothing is sent. The changes are not atomic: the
  // first failure (PostHog's error, the budget or deadline running out, the
  // caller cancelling) stops the update before the next change, and its
  // status keeps its code and details and its message names the changes
  // already applied ("set plan, unset old") and the first not applied.
  absl::Status UpdateProperties(const posthog::v1::PersonRef& ref,
                                const google::protobuf::Struct& set,
                                const std::vector<std::string>& unset,
                                const CallContext& context) const;

 private:
  // PersonUrl returns the person's REST resource
  // (`/api/projects/{id}/persons/{uuid or id}/`): the uuid or numeric id as
  // given (validated), or the uuid found by distinct id.
  absl::StatusOr<UpstreamUrl> PersonUrl(const posthog::v1::PersonRef& ref,
                                        const CallContext& context) const;
  absl::StatusOr<nlohmann::json> FindByDistinctId(const std::string& distinct_id,
                                                  const CallContext& context) const;
  // One request, paced.
  absl::StatusOr<nlohmann::json> Call(const PostHogRequest& request,
                                      const CallContext& context) const;

  const PostHogClient* client_;
  RequestPacer* pacer_;
};

}  // namespace posthog_gateway

#endif  // SERVER_PERSONS_PERSONS_H_
