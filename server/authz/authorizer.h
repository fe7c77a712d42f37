#ifndef SERVER_AUTHZ_AUTHORIZER_H_
#define SERVER_AUTHZ_AUTHORIZER_H_

// Authorizer decides who may call what (docs/security.md):
//
// - Identify names the caller from what the deployment trusts
//   (server.caller_identity): the last element of x-forwarded-client-cert
//   (Istio), l5d-client-id (Linkerd), or the gateway's own mTLS (the client
//   certificate's SPIFFE URI SAN, else its subject); and, when
//   authorization.bearer_tokens_file is set, `authorization: Bearer <token>`
//   (a call that presents a bearer token is that token's caller, and a wrong
//   token is refused even if the mesh names a caller). Headers of an untrusted
//   source are ignored: anyone could send them.
// - Authorize checks, at the top of every handler, that the caller holds the
//   grant the method needs (server/authz/grants.h) on the project asked for,
//   and takes the caller's quota. No identity: UNAUTHENTICATED; no grant:
//   PERMISSION_DENIED whose message and ErrorInfo (reason GRANT_MISSING,
//   metadata caller, grant, project, method) name what is missing; quota
//   spent: RESOURCE_EXHAUSTED with RetryInfo (reason CALLER_QUOTA_EXCEEDED).
// - In development mode (authorization.development_mode) every call is
//   allowed and no quota applies; Identify still names callers for the log.
//
// A handler's first lines:
//   if (grpc::Status denied = authorizer_->Check(*context,
//           "/posthog.v1.PersonService/DeletePerson", request->project());
//       !denied.ok()) return denied;
//
// Thread-safe; borrows the token store and the clock.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/authz/bearer_tokens.h"
#include "server/authz/grants.h"
#include "server/common/clock.h"
#include "server/config/config.h"

namespace posthog_gateway {

// Who made a call, and how the gateway knows.
struct Caller {
  std::string name;
  // "xfcc", "l5d", "tls" or "bearer".
  std::string source;
};

// What a call carries that may name its caller, read from a transport that
// is not gRPC (OFREP's HTTP port). Each header holds its values as received
// (a header sent twice is refused, as on the gRPC port).
struct CallerHeaders {
  std::vector<std::string> authorization;
  std::vector<std::string> forwarded_client_cert;
  std::vector<std::string> l5d_client_id;
};

// AuthorizationNotices returns what the gateway logs at start-up about its
// authorization when it listens on `host`: a loud warning, repeated, in
// development mode beyond loopback; a notice in development mode on
// loopback; a warning when authorization is on and no caller has a grant.
struct StartupNotice {
  bool warning;
  std::string message;
};
std::vector<StartupNotice> AuthorizationNotices(const GatewayConfig& config,
                                                absl::string_view host);

class Authorizer final {
 public:
  // Create checks the grants (callers of authorization.callers and of its
  // grants_file, which it reads) against the known grants and projects;
  // INVALID_ARGUMENT naming the field otherwise. `tokens` may be null (no
  // bearer tokens) and must outlive the authorizer.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Create(const GatewayConfig& config,
                                                            const BearerTokens* tokens,
                                                            Clock* clock);

  // An authorizer in development mode that identifies nobody: for tests
  // that exercise a handler without authorization. Never null.
  static const Authorizer* AllowAll();

  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  bool development_mode() const { return development_mode_; }

  // Identify returns the caller of the call, or UNAUTHENTICATED saying what
  // the gateway trusts and that the call carried none of it (or a bad
  // bearer token).
  absl::StatusOr<Caller> Identify(const grpc::ServerContextBase& context) const;

  // Identify for a call that arrived over HTTP: the same sources and rules,
  // with no TLS peer (the OFREP port is plaintext).
  absl::StatusOr<Caller> Identify(const CallerHeaders& headers) const;

  // IdentifiesCallers is whether Identify can name anyone: false when the
  // deployment trusts no identity source and no bearer tokens, where every
  // Identify builds UNAUTHENTICATED (with its details) only to say so.
  bool IdentifiesCallers() const {
    return source_ != CallerIdentitySource::kNone || tokens_ != nullptr;
  }

  // CallerName is Identify's name, "" when the call has none (what
  // per-caller bounds that must not refuse anyone themselves key on).
  std::string CallerName(const grpc::ServerContextBase& context) const;

  // Authorize decides whether the caller of `context` may call `method`
  // ("/package.Service/Method") on `project` (an alias; empty: the default
  // project), spending `cost` of the caller's quota for the method's grant
  // (events for capture, 1 otherwise).
  absl::Status Authorize(const grpc::ServerContextBase& context, absl::string_view method,
                         absl::string_view project, int64_t cost = 1) const;

  // Authorize for a call that arrived over HTTP; `method` is its line of
  // server/authz/grants.cc (e.g. "POST /ofrep/v1/evaluate/flags").
  absl::Status Authorize(const CallerHeaders& headers, absl::string_view method,
                         absl::string_view project, int64_t cost = 1) const;

  // Authorize as a grpc::Status, for handlers.
  grpc::Status Check(const grpc::ServerContextBase& context, absl::string_view method,
                     absl::string_view project, int64_t cost = 1) const;

  // The alias `project` stands for (the default project when empty).
  std::string ResolveProject(absl::string_view project) const;

 private:
  struct Grants {
    bool all_projects = false;
    std::set<std::string, std::less<>> projects;
    std::set<std::string, std::less<>> grants;
    CallerQuotas quotas;
  };
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };

  Authorizer(bool development_mode, CallerIdentitySource source, const BearerTokens* tokens,
             Clock* clock, std::string default_project, std::set<std::string, std::less<>> aliases,
             std::map<std::string, Grants, std::less<>> callers);

  // What both Identify overloads decide, once the transport's values are
  // read: a bearer token names the caller first, else the trusted source's
  // value (nullopt: absent, or the header was sent more than once).
  absl::StatusOr<Caller> IdentifyFrom(const std::vector<absl::string_view>& authorization,
                                      std::optional<std::string> source_value) const;

  // Authorize once the caller is known (or is not).
  absl::Status AuthorizeCaller(const absl::StatusOr<Caller>& caller, absl::string_view method,
                               absl::string_view project, int64_t cost) const;

  // Takes `cost` from the caller's bucket of `kind` on `project`.
  absl::Status TakeQuota(const Caller& caller, const Grants& grants, QuotaKind kind,
                         const std::string& project, int64_t cost) const;

  const bool development_mode_;
  const CallerIdentitySource source_;
  const BearerTokens* const tokens_;
  Clock* const clock_;
  const std::string default_project_;
  const std::set<std::string, std::less<>> aliases_;
  const std::map<std::string, Grants, std::less<>> callers_;

  mutable absl::Mutex mu_;
  // Keyed by caller, project and kind; bounded by the configured callers,
  // projects and kinds.
  mutable absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_AUTHZ_AUTHORIZER_H_
