#include "server/authz/authorizer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/authz/xfcc.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/grpc/status_conversion.h"

namespace posthog_gateway {
namespace {

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

// Every value of header `name`, as received.
std::vector<absl::string_view> AllValues(const Metadata& metadata, absl::string_view name) {
  std::vector<absl::string_view> values;
  auto [first, last] = metadata.equal_range(grpc::string_ref(name.data(), name.size()));
  for (auto it = first; it != last; ++it) values.emplace_back(it->second.data(), it->second.size());
  return values;
}

std::vector<absl::string_view> Views(const std::vector<std::string>& values) {
  return std::vector<absl::string_view>(values.begin(), values.end());
}

// The header a source names callers in (null for none and for TLS).
const char* SourceHeader(CallerIdentitySource source) {
  switch (source) {
    case CallerIdentitySource::kIstio:
      return "x-forwarded-client-cert";
    case CallerIdentitySource::kLinkerd:
      return "l5d-client-id";
    case CallerIdentitySource::kNone:
    case CallerIdentitySource::kTls:
      return nullptr;
  }
  return nullptr;
}

// The caller a header source names: nullopt when the header is absent, or
// sent more than once (which no trusted proxy does: it would be the caller's
// doing), or (XFCC) names no URI.
std::optional<std::string> SourceValue(CallerIdentitySource source,
                                       const std::vector<absl::string_view>& values) {
  if (values.size() != 1) return std::nullopt;
  if (source == CallerIdentitySource::kIstio) {
    std::string uri = XfccCallerUri(values[0]);
    if (uri.empty()) return std::nullopt;
    return uri;
  }
  return std::string(values[0]);
}

// How the access log names a source.
const char* SourceName(CallerIdentitySource source) {
  switch (source) {
    case CallerIdentitySource::kIstio:
      return "xfcc";
    case CallerIdentitySource::kLinkerd:
      return "l5d";
    case CallerIdentitySource::kTls:
      return "tls";
    case CallerIdentitySource::kNone:
      return "";
  }
  return "";
}

// A name fit for logs and grants: printable ASCII without spaces, bounded.
bool PrintableName(absl::string_view name) {
  if (name.empty() || name.size() > 1024) return false;
  for (char c : name) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

const char* SourceDescription(CallerIdentitySource source) {
  switch (source) {
    case CallerIdentitySource::kNone:
      return "none";
    case CallerIdentitySource::kIstio:
      return "x-forwarded-client-cert from the Istio sidecar";
    case CallerIdentitySource::kLinkerd:
      return "l5d-client-id from the Linkerd proxy";
    case CallerIdentitySource::kTls:
      return "a client certificate";
  }
  return "none";
}

// The identity of the gateway's own mTLS peer: its SPIFFE URI SAN, else its
// subject, else its common name.
std::optional<std::string> TlsPeer(const grpc::ServerContextBase& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return std::nullopt;
  for (const char* property :
       {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_X509_SUBJECT_PROPERTY_NAME}) {
    std::vector<grpc::string_ref> values = auth->FindPropertyValues(property);
    if (values.size() == 1 && values[0].size() > 0) {
      return std::string(values[0].data(), values[0].size());
    }
  }
  std::vector<grpc::string_ref> cn = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (cn.size() == 1 && cn[0].size() > 0) {
    return absl::StrCat("CN=", absl::string_view(cn[0].data(), cn[0].size()));
  }
  return std::nullopt;
}

absl::Status Unauthenticated(absl::string_view message) {
  absl::Status status = absl::UnauthenticatedError(message);
  AttachErrorInfo(status, reasons::kCallerUnknown);
  return status;
}

bool IsLoopback(absl::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || absl::StartsWith(host, "127.");
}

}  // namespace

std::vector<StartupNotice> AuthorizationNotices(const GatewayConfig& config,
                                                absl::string_view host) {
  const AuthorizationConfig& authorization = config.authorization;
  std::vector<StartupNotice> notices;
  if (authorization.development_mode) {
    if (IsLoopback(host)) {
      notices.push_back({false, "development mode: no authorization (listening on loopback only)"});
      return notices;
    }
    const std::string loud = absl::StrCat(
        "DEVELOPMENT MODE: NO AUTHORIZATION on ", host,
        ". Anyone who reaches this port may read and delete persons and change flags with the "
        "gateway's PostHog keys. Turn authorization.development_mode off outside a laptop "
        "(docs/security.md).");
    for (int i = 0; i < 3; ++i) notices.push_back({true, loud});
    return notices;
  }
  if (authorization.callers.empty() && authorization.grants_file.empty()) {
    notices.push_back({true,
                       "authorization is on and no caller has a grant: every call will be "
                       "refused (docs/security.md: authorization.callers, or development_mode "
                       "on a laptop)"});
  }
  return notices;
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(const GatewayConfig& config,
                                                               const BearerTokens* tokens,
                                                               Clock* clock) {
  const AuthorizationConfig& authorization = config.authorization;
  std::vector<CallerGrantConfig> callers = authorization.callers;
  std::string origin = "authorization.callers";
  if (!authorization.grants_file.empty()) {
    absl::StatusOr<std::vector<CallerGrantConfig>> more = LoadGrantsFile(authorization.grants_file);
    if (!more.ok()) return more.status();
    callers.insert(callers.end(), more->begin(), more->end());
  }
  std::set<std::string, std::less<>> aliases;
  for (const ProjectConfig& project : config.projects) aliases.insert(project.alias);
  std::map<std::string, Grants, std::less<>> by_caller;
  for (size_t i = 0; i < callers.size(); ++i) {
    const CallerGrantConfig& caller = callers[i];
    const std::string path = absl::StrCat("callers[", i, "] (", caller.caller, ")");
    Grants& grants = by_caller[caller.caller];
    if (!grants.grants.empty() || grants.all_projects || !grants.projects.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": the caller is listed twice"));
    }
    for (const std::string& project : caller.projects) {
      if (project == "*") {
        grants.all_projects = true;
      } else if (aliases.count(project) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".projects: \"", project, "\" is no configured project"));
      } else {
        grants.projects.insert(project);
      }
    }
    for (const std::string& grant : caller.grants) {
      if (FindGrant(grant) == nullptr) {
        std::vector<absl::string_view> known;
        for (const GrantInfo& info : posthog_gateway::Grants()) known.push_back(info.name);
        return absl::InvalidArgumentError(absl::StrCat(path, ".grants: unknown grant \"", grant,
                                                       "\"; known: ", absl::StrJoin(known, ", ")));
      }
      grants.grants.insert(grant);
    }
    grants.quotas = caller.quotas.value_or(authorization.quotas);
  }
  return std::unique_ptr<Authorizer>(
      new Authorizer(authorization.development_mode, config.server.caller_identity, tokens, clock,
                     config.default_project, std::move(aliases), std::move(by_caller)));
}

const Authorizer* Authorizer::AllowAll() {
  static const Authorizer* const allow_all = new Authorizer(
      /*development_mode=*/true, CallerIdentitySource::kNone, nullptr, RealClock(), "", {}, {});
  return allow_all;
}

Authorizer::Authorizer(bool development_mode, CallerIdentitySource source,
                       const BearerTokens* tokens, Clock* clock, std::string default_project,
                       std::set<std::string, std::less<>> aliases,
                       std::map<std::string, Grants, std::less<>> callers)
    : development_mode_(development_mode),
      source_(source),
      tokens_(tokens),
      clock_(clock),
      default_project_(std::move(default_project)),
      aliases_(std::move(aliases)),
      callers_(std::move(callers)) {}

absl::StatusOr<Caller> Authorizer::Identify(const grpc::ServerContextBase& context) const {
  const Metadata& metadata = context.client_metadata();
  std::optional<std::string> value;
  if (source_ == CallerIdentitySource::kTls) {
    value = TlsPeer(context);
  } else if (const char* header = SourceHeader(source_)) {
    value = SourceValue(source_, AllValues(metadata, header));
  }
  return IdentifyFrom(AllValues(metadata, "authorization"), std::move(value));
}

absl::StatusOr<Caller> Authorizer::Identify(const CallerHeaders& headers) const {
  std::optional<std::string> value;
  if (source_ == CallerIdentitySource::kIstio) {
    value = SourceValue(source_, Views(headers.forwarded_client_cert));
  } else if (source_ == CallerIdentitySource::kLinkerd) {
    value = SourceValue(source_, Views(headers.l5d_client_id));
  }
  return IdentifyFrom(Views(headers.authorization), std::move(value));
}

absl::StatusOr<Caller> Authorizer::IdentifyFrom(const std::vector<absl::string_view>& authorization,
                                                std::optional<std::string> source_value) const {
  if (tokens_ != nullptr) {
    if (authorization.size() > 1) return Unauthenticated("more than one authorization header");
    if (authorization.size() == 1 && authorization[0].size() > 7 &&
        absl::EqualsIgnoreCase(authorization[0].substr(0, 7), "bearer ")) {
      absl::StatusOr<std::string> name =
          tokens_->Identify(absl::StripLeadingAsciiWhitespace(authorization[0].substr(7)));
      if (!name.ok()) return Unauthenticated(name.status().message());
      return Caller{*std::move(name), "bearer"};
    }
  }
  if (source_value.has_value() && PrintableName(*source_value)) {
    return Caller{*std::move(source_value), SourceName(source_)};
  }
  if (source_ == CallerIdentitySource::kNone && tokens_ == nullptr) {
    return Unauthenticated(
        "no caller identity: the gateway trusts no identity source (server.caller_identity, "
        "authorization.bearer_tokens_file)");
  }
  std::vector<std::string> trusted;
  if (source_ != CallerIdentitySource::kNone) trusted.push_back(SourceDescription(source_));
  if (tokens_ != nullptr) trusted.push_back("an `authorization: Bearer` token");
  return Unauthenticated(absl::StrCat("no caller identity: the gateway trusts ",
                                      absl::StrJoin(trusted, " or "),
                                      " and the call carried none that is valid"));
}

std::string Authorizer::ResolveProject(absl::string_view project) const {
  return project.empty() ? default_project_ : std::string(project);
}

std::string Authorizer::CallerName(const grpc::ServerContextBase& context) const {
  if (!IdentifiesCallers()) return std::string();
  absl::StatusOr<Caller> caller = Identify(context);
  return caller.ok() ? caller->name : std::string();
}

absl::Status Authorizer::Authorize(const grpc::ServerContextBase& context, absl::string_view method,
                                   absl::string_view project, int64_t cost) const {
  if (development_mode_) return absl::OkStatus();
  return AuthorizeCaller(Identify(context), method, project, cost);
}

absl::Status Authorizer::Authorize(const CallerHeaders& headers, absl::string_view method,
                                   absl::string_view project, int64_t cost) const {
  if (development_mode_) return absl::OkStatus();
  return AuthorizeCaller(Identify(headers), method, project, cost);
}

absl::Status Authorizer::AuthorizeCaller(const absl::StatusOr<Caller>& caller,
                                         absl::string_view method, absl::string_view project,
                                         int64_t cost) const {
  if (!caller.ok()) return caller.status();
  const std::string alias = ResolveProject(project);
  const absl::string_view method_name = absl::StripPrefix(method, "/");
  const MethodGrant* needed = FindMethodGrant(method);
  auto denied = [&](absl::string_view grant, std::string message) {
    absl::Status status = absl::PermissionDeniedError(message);
    AttachErrorInfo(status, reasons::kGrantMissing,
                    {{"caller", caller->name},
                     {"grant", std::string(grant)},
                     {"project", alias},
                     {"method", std::string(method_name)}});
    return status;
  };
  if (needed == nullptr) {
    return denied("", absl::StrCat(method_name, " is in no grant: nobody may call it"));
  }
  auto it = callers_.find(caller->name);
  const bool granted = it != callers_.end() && it->second.grants.count(needed->grant) > 0;
  const bool on_project =
      it != callers_.end() && (it->second.all_projects || it->second.projects.count(alias) > 0);
  if (!granted || !on_project) {
    return denied(needed->grant,
                  absl::StrCat("caller \"", caller->name, "\" lacks the grant \"", needed->grant,
                               "\" on project \"", alias, "\" (needed by ", method_name, ")"));
  }
  return TakeQuota(*caller, it->second, FindGrant(needed->grant)->quota, alias, cost);
}

grpc::Status Authorizer::Check(const grpc::ServerContextBase& context, absl::string_view method,
                               absl::string_view project, int64_t cost) const {
  if (development_mode_) return grpc::Status::OK;
  return ToGrpcStatus(Authorize(context, method, project, cost));
}

absl::Status Authorizer::TakeQuota(const Caller& caller, const Grants& grants, QuotaKind kind,
                                   const std::string& project, int64_t cost) const {
  int64_t rate = 0;
  absl::Duration period;
  const char* what = "";
  switch (kind) {
    case QuotaKind::kNone:
      return absl::OkStatus();
    case QuotaKind::kPersons:
      rate = grants.quotas.persons_per_minute;
      period = absl::Minutes(1);
      what = "persons requests per minute";
      break;
    case QuotaKind::kFlagManagement:
      rate = grants.quotas.flag_management_per_minute;
      period = absl::Minutes(1);
      what = "flag-management requests per minute";
      break;
    case QuotaKind::kCaptureEvents:
      rate = grants.quotas.capture_events_per_second;
      period = absl::Seconds(1);
      what = "captured events per second";
      break;
  }
  // Unknown projects fail in the handler; no bucket is made for them.
  if (rate <= 0 || cost <= 0 || aliases_.count(project) == 0) return absl::OkStatus();
  // A token bucket holding one period's worth: a burst of `rate`, refilled
  // at `rate` per period. A call costing more than the whole bucket passes
  // once the bucket is full and leaves it in debt.
  const double capacity = static_cast<double>(rate);
  const double per_second = capacity / absl::ToDoubleSeconds(period);
  const double needed = std::min(static_cast<double>(cost), capacity);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Bucket& bucket =
      buckets_
          .try_emplace(absl::StrCat(caller.name, "\n", project, "\n", static_cast<int>(kind)),
                       Bucket{capacity, now})
          .first->second;
  bucket.tokens =
      std::min(capacity, bucket.tokens + absl::ToDoubleSeconds(now - bucket.updated) * per_second);
  bucket.updated = now;
  if (bucket.tokens >= needed) {
    bucket.tokens -= static_cast<double>(cost);
    return absl::OkStatus();
  }
  const absl::Duration wait =
      absl::Milliseconds(std::ceil((needed - bucket.tokens) / per_second * 1000));
  absl::Status status = absl::ResourceExhaustedError(
      absl::StrCat("caller \"", caller.name, "\" spent its quota of ", rate, " ", what,
                   " on project \"", project, "\"; next in ", absl::FormatDuration(wait)));
  AttachErrorInfo(status, reasons::kCallerQuotaExceeded,
                  {{"caller", caller.name}, {"project", project}, {"quota", what}});
  AttachRetryDelay(status, wait);
  return status;
}

}  // namespace posthog_gateway
