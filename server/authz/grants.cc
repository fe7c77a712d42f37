#include "server/authz/grants.h"

namespace posthog_gateway {
namespace {

constexpr GrantInfo kGrants[] = {
    {kGrantCapture, QuotaKind::kCaptureEvents},         {kGrantFlagEvaluation, QuotaKind::kNone},
    {kGrantFlagManagement, QuotaKind::kFlagManagement}, {kGrantGroupsRead, QuotaKind::kPersons},
    {kGrantGroupsWrite, QuotaKind::kPersons},           {kGrantPersonsRead, QuotaKind::kPersons},
    {kGrantPersonsWrite, QuotaKind::kPersons},          {kGrantUser, QuotaKind::kNone},
};

// THE table: one line per RPC. Keep it sorted by service, then in the order
// of the .proto.
constexpr MethodGrant kMethodGrants[] = {
    // posthog.v1.CaptureService: events go to PostHog's ingestion, which
    // updates persons from them ($identify, $set) with the project key.
    {"/posthog.v1.CaptureService/CaptureEvent", kGrantCapture},
    {"/posthog.v1.CaptureService/BatchCaptureEvents", kGrantCapture},
    {"/posthog.v1.CaptureService/StreamCaptureEvents", kGrantCapture},
    {"/posthog.v1.CaptureService/Identify", kGrantCapture},
    {"/posthog.v1.CaptureService/Alias", kGrantCapture},
    {"/posthog.v1.CaptureService/GroupIdentify", kGrantCapture},
    {"/posthog.v1.CaptureService/SetPersonProperties", kGrantCapture},
    // posthog.v1.FlagService.
    {"/posthog.v1.FlagService/EvaluateFlag", kGrantFlagEvaluation},
    {"/posthog.v1.FlagService/EvaluateFlags", kGrantFlagEvaluation},
    {"/posthog.v1.FlagService/WatchFlagDefinitions", kGrantFlagEvaluation},
    {"/posthog.v1.FlagService/ListFlags", kGrantFlagManagement},
    {"/posthog.v1.FlagService/GetFlag", kGrantFlagManagement},
    {"/posthog.v1.FlagService/CreateFlag", kGrantFlagManagement, /*audited=*/true},
    {"/posthog.v1.FlagService/UpdateFlag", kGrantFlagManagement, /*audited=*/true},
    {"/posthog.v1.FlagService/DeleteFlag", kGrantFlagManagement, /*audited=*/true},
    // posthog.v1.GroupService: the same private-API budget as persons.
    {"/posthog.v1.GroupService/ListGroupTypes", kGrantGroupsRead},
    {"/posthog.v1.GroupService/ListGroups", kGrantGroupsRead},
    {"/posthog.v1.GroupService/GetGroup", kGrantGroupsRead},
    {"/posthog.v1.GroupService/CreateGroup", kGrantGroupsWrite, /*audited=*/true},
    {"/posthog.v1.GroupService/UpdateGroupProperties", kGrantGroupsWrite, /*audited=*/true},
    // flagd.evaluation.v2.Service: OpenFeature's flagd providers evaluate
    // through FlagServiceImpl::Evaluate, as EvaluateFlag(s) do.
    {"/flagd.evaluation.v2.Service/ResolveAll", kGrantFlagEvaluation},
    {"/flagd.evaluation.v2.Service/ResolveBoolean", kGrantFlagEvaluation},
    {"/flagd.evaluation.v2.Service/ResolveString", kGrantFlagEvaluation},
    {"/flagd.evaluation.v2.Service/ResolveFloat", kGrantFlagEvaluation},
    {"/flagd.evaluation.v2.Service/ResolveInt", kGrantFlagEvaluation},
    {"/flagd.evaluation.v2.Service/ResolveObject", kGrantFlagEvaluation},
    {"/flagd.evaluation.v2.Service/EventStream", kGrantFlagEvaluation},
    // OFREP, on its own HTTP port (server/openfeature/ofrep_server.h).
    {kOfrepEvaluateFlag, kGrantFlagEvaluation},
    {kOfrepEvaluateFlags, kGrantFlagEvaluation},
    // posthog.v1.PersonService.
    {"/posthog.v1.PersonService/ListPersons", kGrantPersonsRead},
    {"/posthog.v1.PersonService/GetPerson", kGrantPersonsRead},
    {"/posthog.v1.PersonService/DeletePerson", kGrantPersonsWrite, /*audited=*/true},
    {"/posthog.v1.PersonService/UpdatePersonProperties", kGrantPersonsWrite, /*audited=*/true},
    // posthog.v1.UserService.
    {"/posthog.v1.UserService/GetCurrentUser", kGrantUser},
};

}  // namespace

absl::Span<const GrantInfo> Grants() { return kGrants; }

absl::Span<const MethodGrant> MethodGrants() { return kMethodGrants; }

const GrantInfo* FindGrant(absl::string_view grant) {
  for (const GrantInfo& info : kGrants) {
    if (info.name == grant) return &info;
  }
  return nullptr;
}

const MethodGrant* FindMethodGrant(absl::string_view method) {
  for (const MethodGrant& entry : kMethodGrants) {
    if (entry.method == method) return &entry;
  }
  return nullptr;
}

}  // namespace posthog_gateway
