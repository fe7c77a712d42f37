#ifndef SERVER_AUTHZ_AUDIT_LOG_H_
#define SERVER_AUTHZ_AUDIT_LOG_H_

// The audit log: one JSON line for every call of a write or delete RPC
// (MethodGrant::audited in server/authz/grants.h), allowed or not, apart
// from the access log:
//
//   {"time":"2026-12-06T05:01:02.345Z","log":"audit","caller":"spiffe://...",
//    "caller_source":"xfcc","project":"prod",
//    "method":"posthog.v1.PersonService/DeletePerson",
//    "target":"person uuid 0190...","code":"OK","request_id":"..."}
//
// `caller` is empty (and caller_source absent) when the call carried no
// identity; `target` names the person or flag the request named (bounded to
// 256 bytes). Records go to authorization.audit_log_file (appended, created
// 0600) or, without one, to stderr with the {"log":"audit"} marker that
// tells them from the access log's lines. Audit records are written
// whatever --log_level says.
//
// AuditInterceptorFactory writes the records: it reads the request when it
// arrives and writes the line when the call is torn down, with its status.
//
// Thread-safe.

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/authz/authorizer.h"

namespace posthog_gateway {

struct AuditRecord {
  std::string caller;
  std::string caller_source;
  std::string project;
  std::string method;  // "posthog.v1.PersonService/DeletePerson".
  std::string target;
  std::string code;  // "OK", "PermissionDenied", ...
  std::string request_id;
};

class AuditLog final {
 public:
  // Appends to `path` (created 0600 when missing), or writes to stderr when
  // `path` is empty. FAILED_PRECONDITION when the file cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Write appends one line (one write(2)).
  void Write(const AuditRecord& record);

  // The line Write would write, without its time (for tests).
  static std::string Format(const AuditRecord& record, absl::string_view time);

 private:
  explicit AuditLog(int fd, bool owned) : fd_(fd), owned_(owned) {}

  absl::Mutex mu_;
  const int fd_;
  const bool owned_;
};

// The project and target of an audited request, read from the request
// message of `method` (one of the audited methods of grants.h); empty when
// the method has no reader.
struct AuditSubject {
  std::string project;
  std::string target;
};
AuditSubject AuditSubjectOf(absl::string_view method, const void* request);

class AuditInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Borrows both; they must outlive the server.
  AuditInterceptorFactory(const Authorizer* authorizer, AuditLog* log)
      : authorizer_(authorizer), log_(log) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const Authorizer* const authorizer_;
  AuditLog* const log_;
};

}  // namespace posthog_gateway

#endif  // SERVER_AUTHZ_AUDIT_LOG_H_
