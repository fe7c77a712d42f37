#include "server/openfeature/ofrep_server.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/common/error_details.h"
#include "server/common/log.h"
#include "server/openfeature/resolution.h"
#include "server/service/flag_results.h"

namespace posthog_gateway {
namespace {

using nlohmann::json;
using openfeature::ErrorCode;
using openfeature::Resolution;

constexpr char kSinglePath[] = "/ofrep/v1/evaluate/flags/";
constexpr char kBulkPath[] = "/ofrep/v1/evaluate/flags";
constexpr char kProjectHeader[] = "x-posthog-project";
constexpr const char* kTraceHeaders[] = {
    "traceparent", "tracestate",        "x-request-id", "b3",        "x-b3-traceid",
    "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"};

void SendJson(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(body.dump(), "application/json");
}

// A failure of one flag, as the spec's evaluation failure object.
json Failure(absl::string_view key, absl::string_view code, absl::string_view details) {
  json failure = {{"errorCode", code}, {"errorDetails", details}};
  if (!key.empty()) failure["key"] = key;
  return failure;
}

json Success(const std::string& key, const Resolution& resolution) {
  json success = {{"key", key}, {"reason", resolution.reason}, {"metadata", resolution.metadata}};
  if (!resolution.value.is_null()) success["value"] = resolution.value;
  if (!resolution.variant.empty()) success["variant"] = resolution.variant;
  return success;
}

// The answer to a request the gateway refused before evaluating: 400 with
// the context's error code (or GENERAL), 429 with Retry-After, else 500.
void SendRefusal(httplib::Response& response, absl::string_view key, const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: {
      const ErrorCode code = openfeature::ContextErrorCode(status);
      SendJson(response, 400,
               Failure(key, code == ErrorCode::kNone ? "GENERAL" : openfeature::ErrorCodeName(code),
                       message));
      return;
    }
    case absl::StatusCode::kResourceExhausted: {
      const absl::Duration delay = RetryDelay(status).value_or(absl::Seconds(1));
      response.set_header("Retry-After",
                          absl::StrCat(std::max<int64_t>(
                              1, absl::ToInt64Seconds(absl::Ceil(delay, absl::Seconds(1))))));
      SendJson(response, 429, {{"errorDetails", message}});
      return;
    }
    default:
      SendJson(response, 500, {{"errorDetails", message}});
      return;
  }
}

// The headers that may name the caller.
CallerHeaders HeadersOf(const httplib::Request& request) {
  CallerHeaders headers;
  auto all = [&](const char* name, std::vector<std::string>& values) {
    auto [first, last] = request.headers.equal_range(name);
    for (auto it = first; it != last; ++it) values.push_back(it->second);
  };
  all("authorization", headers.authorization);
  all("x-forwarded-client-cert", headers.forwarded_client_cert);
  all("l5d-client-id", headers.l5d_client_id);
  return headers;
}

// The answer to a call the authorizer refused: 401 (no identity), 403 (no
// grant), 429 (the caller's quota), with the reason in errorDetails.
void SendDenial(httplib::Response& response, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      SendJson(response, 401, {{"errorDetails", status.message()}});
      return;
    case absl::StatusCode::kPermissionDenied:
      SendJson(response, 403, {{"errorDetails", status.message()}});
      return;
    default:
      SendRefusal(response, "", status);
      return;
  }
}

// The body's context, or why it cannot be read.
absl::StatusOr<posthog::v1::EvaluationContext> ContextOf(const httplib::Request& request) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    absl::Status status = absl::InvalidArgumentError("the body is not a JSON object");
    AttachErrorInfo(status, openfeature::ErrorCodeName(ErrorCode::kParseError));
    return status;
  }
  auto context = body.find("context");
  return openfeature::ContextFromOpenFeature(context == body.end() ? json(nullptr) : *context);
}

// When the request being served by this thread started (httplib serves a
// request, then logs it, on one thread).
thread_local absl::Time request_start;

// FNV-1a, 64 bits: the bulk answer's ETag, the same on every replica.
std::string Etag(absl::string_view body) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : body) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return absl::StrFormat("\"%016x\"", hash);
}

}  // namespace

OfrepServer::OfrepServer(FlagServiceImpl* flags, const Authorizer* authorizer, Options options)
    : flags_(flags),
      authorizer_(authorizer),
      options_(options),
      server_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(1, options_.threads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  server_->Post(absl::StrCat(kSinglePath, "(.+)"),
                [this](const httplib::Request& request, httplib::Response& response) {
                  EvaluateOne(request, response);
                });
  server_->Post(kBulkPath, [this](const httplib::Request& request, httplib::Response& response) {
    EvaluateAll(request, response);
  });
  server_->set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = absl::Now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_->set_logger([this](const httplib::Request& request, const httplib::Response& response) {
    LogRequest(request, response, request_start);
  });
}

OfrepServer::~OfrepServer() { Stop(); }

absl::StatusOr<int> OfrepServer::Start(absl::string_view host, int port) {
  const std::string address(host);
  const int bound = port == 0 ? server_->bind_to_any_port(address)
                              : (server_->bind_to_port(address, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() before the loop starts would be lost: wait for it to run.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!server_->is_running() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return bound;
}

void OfrepServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

namespace {

// What a PostHog call made for `request` inherits: a deadline and its trace
// headers.
std::function<CallContext()> CallContextOf(const httplib::Request& request,
                                           absl::Duration timeout) {
  CallContext call;
  call.deadline = absl::Now() + timeout;
  for (const char* name : kTraceHeaders) {
    if (request.has_header(name))
      call.trace_headers.emplace_back(name, request.get_header_value(name));
  }
  return [call = std::move(call)] { return call; };
}

}  // namespace

void OfrepServer::EvaluateOne(const httplib::Request& request, httplib::Response& response) {
  const std::string key = request.matches[1];
  if (absl::Status denied = authorizer_->Authorize(HeadersOf(request), kOfrepEvaluateFlag,
                                                   request.get_header_value(kProjectHeader));
      !denied.ok()) {
    SendDenial(response, denied);
    return;
  }
  absl::StatusOr<posthog::v1::EvaluationContext> who = ContextOf(request);
  if (!who.ok()) {
    const std::optional<std::string> reason = ErrorInfoReason(who.status());
    if (reason == openfeature::ErrorCodeName(ErrorCode::kParseError)) {
      SendJson(response, 400, Failure(key, "PARSE_ERROR", who.status().message()));
    } else {
      SendRefusal(response, key, who.status());
    }
    return;
  }
  posthog::v1::EvaluationOptions options;
  options.set_send_flag_called_events(true);
  absl::Notification done;
  flags_->Evaluate(
      CallContextOf(request, options_.request_timeout), request.get_header_value(kProjectHeader),
      {key}, *who, options, [&](absl::StatusOr<const FlagResults*> results) {
        if (!results.ok()) {
          SendRefusal(response, key, results.status());
        } else {
          const Resolution resolution =
              openfeature::Resolve((*results)->ToProto(0), openfeature::ValueType::kAny);
          if (resolution.error == ErrorCode::kNone) {
            SendJson(response, 200, Success(key, resolution));
          } else if (resolution.error == ErrorCode::kFlagNotFound) {
            SendJson(response, 404, Failure(key, "FLAG_NOT_FOUND", resolution.error_message));
          } else {
            SendJson(response, 500, {{"errorDetails", resolution.error_message}});
          }
        }
        done.Notify();
      });
  done.WaitForNotification();
}

void OfrepServer::EvaluateAll(const httplib::Request& request, httplib::Response& response) {
  if (absl::Status denied = authorizer_->Authorize(HeadersOf(request), kOfrepEvaluateFlags,
                                                   request.get_header_value(kProjectHeader));
      !denied.ok()) {
    SendDenial(response, denied);
    return;
  }
  absl::StatusOr<posthog::v1::EvaluationContext> who = ContextOf(request);
  if (!who.ok()) {
    const std::optional<std::string> reason = ErrorInfoReason(who.status());
    if (reason == openfeature::ErrorCodeName(ErrorCode::kParseError)) {
      SendJson(response, 400, Failure("", "PARSE_ERROR", who.status().message()));
    } else {
      SendRefusal(response, "", who.status());
    }
    return;
  }
  absl::Notification done;
  flags_->Evaluate(
      CallContextOf(request, options_.request_timeout), request.get_header_value(kProjectHeader),
      {}, *who, posthog::v1::EvaluationOptions(), [&](absl::StatusOr<const FlagResults*> results) {
        if (!results.ok()) {
          SendRefusal(response, "", results.status());
          done.Notify();
          return;
        }
        json flags = json::array();
        for (size_t i = 0; i < (*results)->size(); ++i) {
          const std::string& key = (*results)->key(i);
          const Resolution resolution =
              openfeature::Resolve((*results)->ToProto(i), openfeature::ValueType::kAny);
          flags.push_back(resolution.error == ErrorCode::kNone
                              ? Success(key, resolution)
                              : Failure(key, openfeature::ErrorCodeName(resolution.error),
                                        resolution.error_message));
        }
        const std::string body =
            json{{"flags", std::move(flags)}, {"metadata", json::object()}}.dump();
        const std::string etag = Etag(body);
        response.set_header("ETag", etag);
        if (request.get_header_value("If-None-Match") == etag) {
          response.status = 304;
        } else {
          response.status = 200;
          response.set_content(body, "application/json");
        }
        done.Notify();
      });
  done.WaitForNotification();
}

void OfrepServer::LogRequest(const httplib::Request& request, const httplib::Response& response,
                             absl::Time start) const {
  const bool ok = response.status < 400;
  if (options_.access_log == AccessLog::kOff || (options_.access_log == AccessLog::kErrors && ok)) {
    return;
  }
  const std::string path = absl::StartsWith(request.path, kSinglePath)
                               ? absl::StrCat(kSinglePath, "{key}")
                               : request.path;
  LogFields fields = {
      {"method", absl::StrCat("OFREP ", request.method, " ", path)},
      {"code", absl::StrCat(response.status)},
      {"duration_ms", absl::StrCat(absl::ToDoubleMilliseconds(absl::Now() - start))},
      {"peer", absl::StrCat(request.remote_addr, ":", request.remote_port)}};
  if (request.has_header("x-request-id")) {
    fields.emplace_back("request_id", request.get_header_value("x-request-id"));
  }
  if (request.has_header("traceparent")) {
    const std::string traceparent = request.get_header_value("traceparent");
    if (traceparent.size() >= 36 && traceparent[2] == '-') {
      fields.emplace_back("trace_id", traceparent.substr(3, 32));
    }
  }
  if (absl::StatusOr<Caller> caller = authorizer_->Identify(HeadersOf(request)); caller.ok()) {
    fields.emplace_back("caller", caller->name);
  }
  Log(ok ? LogSeverity::kInfo : LogSeverity::kWarning, "call", fields);
}

}  // namespace posthog_gateway
