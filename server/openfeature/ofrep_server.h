#ifndef SERVER_OPENFEATURE_OFREP_SERVER_H_
#define SERVER_OPENFEATURE_OFREP_SERVER_H_

// OfrepServer serves the OpenFeature Remote Evaluation Protocol (OFREP,
// HTTP/JSON; repository open-feature/protocol, service/openapi.yaml) on a
// port of its own, off by default (`--ofrep_port`, `openfeature.ofrep_port`),
// so that OFREP providers evaluate PostHog flags through the gateway:
// - `POST /ofrep/v1/evaluate/flags/{key}` with `{"context": {...}}`: 200
//   `{key, value, reason, variant, metadata}`; 404 FLAG_NOT_FOUND; 400
//   PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT or GENERAL (an
//   unknown project); 429 with Retry-After; 500 `{errorDetails}`.
// - `POST /ofrep/v1/evaluate/flags`: 200 `{flags: [...], metadata}`, each
//   flag a success or a failure object, with an ETag (a hash of the body);
//   `If-None-Match` equal to it: 304 without a body.
// Evaluation is FlagServiceImpl::Evaluate (local, then PostHog's fallback
// within `request_timeout`) and the values, reasons and errors are
// openfeature::Resolve's, as for flagd's protocol (docs/openfeature.md):
// no type is asked, so a value is the variant key, else the boolean; the
// payload is in the metadata (`payload`, JSON text). Single flags record
// `$feature_flag_called` events; bulk evaluations do not.
//
// The project is the `x-posthog-project` header's alias, else the default.
// Every request is authorized as on the gRPC port (grant flag_evaluation on
// the project; the caller from a bearer token, x-forwarded-client-cert or
// l5d-client-id per server.caller_identity; the port is plaintext, so no
// TLS identity): 401 without an identity, 403 without the grant, 429 past
// the caller's quota, each `{errorDetails}`. Each request gets one
// access-log line, with the gRPC port's fields and rules
// (server.access_log). Requests are served by at most `threads` threads; bodies
// over `max_body_bytes` are refused (413).
//
// Thread-safe. Borrows the flag service and the authorizer, which must
// outlive the server.

#include <cstddef>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/authz/authorizer.h"
#include "server/config/config.h"
#include "server/service/flag_service.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace posthog_gateway {

class OfrepServer final {
 public:
  struct Options {
    AccessLog access_log = AccessLog::kAll;
    int threads = 8;
    size_t max_body_bytes = 1 << 20;
    // The longest an evaluation waits for PostHog.
    absl::Duration request_timeout = absl::Seconds(10);
  };

  // `authorizer` decides every request; it must outlive the server.
  OfrepServer(FlagServiceImpl* flags, const Authorizer* authorizer, Options options);
  ~OfrepServer();

  OfrepServer(const OfrepServer&) = delete;
  OfrepServer& operator=(const OfrepServer&) = delete;

  // Start listens on host:port (0 picks a port) and returns the bound port.
  absl::StatusOr<int> Start(absl::string_view host, int port);

  // Stop stops serving; also done by the destructor.
  void Stop();

 private:
  void EvaluateOne(const httplib::Request& request, httplib::Response& response);
  void EvaluateAll(const httplib::Request& request, httplib::Response& response);
  void LogRequest(const httplib::Request& request, const httplib::Response& response,
                  absl::Time start) const;

  FlagServiceImpl* const flags_;
  const Authorizer* const authorizer_;
  const Options options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace posthog_gateway

#endif  // SERVER_OPENFEATURE_OFREP_SERVER_H_
