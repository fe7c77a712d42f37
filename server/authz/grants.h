#ifndef SERVER_AUTHZ_GRANTS_H_
#define SERVER_AUTHZ_GRANTS_H_

// Which grant each RPC needs, in ONE table (grants.cc): a new RPC is one
// line there, e.g.
//   {"/flagd.evaluation.v2.Service/ResolveBoolean", kGrantFlagEvaluation},
// and a new group of RPCs is one more grant in kGrants. A method missing
// from the table is refused to everyone (outside development mode), and
// tests/authz/grants_test.cc fails for every method of every posthog.v1
// service that the table forgets.
//
// Pure data and lookups; thread-safe.

#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace posthog_gateway {

// The grants (groups of RPCs) a caller can be given.
inline constexpr absl::string_view kGrantCapture = "capture";
inline constexpr absl::string_view kGrantFlagEvaluation = "flag_evaluation";
inline constexpr absl::string_view kGrantFlagManagement = "flag_management";
inline constexpr absl::string_view kGrantGroupsRead = "groups_read";
inline constexpr absl::string_view kGrantGroupsWrite = "groups_write";
inline constexpr absl::string_view kGrantPersonsRead = "persons_read";
inline constexpr absl::string_view kGrantPersonsWrite = "persons_write";
inline constexpr absl::string_view kGrantUser = "user";

// Which shared budget a grant's calls spend, for per-caller quotas.
enum class QuotaKind {
  kNone,
  kPersons,         // Calls per minute (PostHog's persons throttle).
  kFlagManagement,  // Calls per minute (PostHog's private-API throttle).
  kCaptureEvents,   // Events per second (the capture pipeline).
};

struct GrantInfo {
  absl::string_view name;
  QuotaKind quota;
};

// OFREP's two operations, as the table names them (HTTP, not gRPC).
inline constexpr absl::string_view kOfrepEvaluateFlag = "POST /ofrep/v1/evaluate/flags/{key}";
inline constexpr absl::string_view kOfrepEvaluateFlags = "POST /ofrep/v1/evaluate/flags";

struct MethodGrant {
  // The full method path, "/package.Service/Method"; for OFREP, the HTTP
  // method and path template.
  absl::string_view method;
  absl::string_view grant;
  // A write or a delete: each call gets an audit record.
  bool audited = false;
};

// Every grant, in the order the documentation lists them.
absl::Span<const GrantInfo> Grants();

// Every method the gateway serves and the grant it needs.
absl::Span<const MethodGrant> MethodGrants();

// The entry of `grant`; nullptr for an unknown name.
const GrantInfo* FindGrant(absl::string_view grant);

// The entry of `method` ("/posthog.v1.PersonService/DeletePerson"); nullptr
// for a method nobody may call.
const MethodGrant* FindMethodGrant(absl::string_view method);

}  // namespace posthog_gateway

#endif  // SERVER_AUTHZ_GRANTS_H_
