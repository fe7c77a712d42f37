#include "server/grpc/observability_interceptor.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

const char* TypeName(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "Unknown";
}

// The trace id of a W3C traceparent, `00-<trace id>-<span id>-<flags>`.
std::string TraceId(absl::string_view traceparent) {
  if (traceparent.size() < 36 || traceparent[2] != '-') return "";
  return std::string(traceparent.substr(3, 32));
}

// The delay of the RetryInfo in `status`'s details, in milliseconds, for
// the grpc-retry-pushback-ms trailer: gRPC clients whose service config has
// a retryPolicy wait that long before their next attempt (gRFC A6), where
// RetryInfo itself is read only by code that looks for it.
std::optional<int64_t> RetryPushbackMillis(const grpc::Status& status) {
  if (status.ok() || status.error_details().empty()) return std::nullopt;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const google::protobuf::Any& detail : details.details()) {
    google::rpc::RetryInfo info;
    if (detail.Is<google::rpc::RetryInfo>() && detail.UnpackTo(&info)) {
      return info.retry_delay().seconds() * 1000 + info.retry_delay().nanos() / 1000000;
    }
  }
  return std::nullopt;
}

class ObservabilityInterceptor final : public grpc::experimental::Interceptor {
 public:
  using MethodInfo = ObservabilityInterceptorFactory::MethodInfo;

  ObservabilityInterceptor(ServerRpcInfo* info, MethodInfo* method, Counter* handled,
                           const Authorizer* authorizer, AccessLog access_log)
      : info_(info),
        method_(method),
        handled_(handled),
        authorizer_(authorizer),
        access_log_policy_(access_log),
        start_(absl::Now()) {
    method_->started->Add();
  }

  // An OK call's line is held and written with others (LogBuffered): a
  // write(2) per call cost a durable CaptureEvent about 10 us of CPU at
  // 128 callers. A failed call's line (WARNING) is written at once.
  ~ObservabilityInterceptor() override {
    if (!access_log_.empty()) LogBuffered(access_log_severity_, "call", access_log_);
  }

  // Only the status on its way out: the request's metadata is read when the
  // call is logged (Finish), from the call's context, which holds it for the
  // whole call. Reading it on arrival built gRPC's metadata map (a heap node
  // per entry) and copied x-request-id and the trace id for every call, most
  // of which are never logged (access_log "errors", health checks).
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (std::optional<int64_t> millis = RetryPushbackMillis(status)) {
        methods->GetSendTrailingMetadata()->emplace("grpc-retry-pushback-ms",
                                                    absl::StrCat(*millis));
      }
      Finish(status);
    }
    methods->Proceed();
  }

 private:
  void Finish(const grpc::Status& status) {
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
    const int index = static_cast<int>(status.error_code());
    const char* code = CodeName(status.error_code());
    if (index >= 0 && index < 17) {
      // A race resolves the same series twice: harmless.
      std::atomic<Counter::Series*>& slot = method_->handled[index];
      Counter::Series* series = slot.load(std::memory_order_acquire);
      if (series == nullptr) {
        series = handled_->WithLabels({method_->type, method_->service, method_->method, code});
        slot.store(series, std::memory_order_release);
      }
      series->Add();
    } else {
      handled_->Add({method_->type, method_->service, method_->method, code});
    }
    method_->handling_seconds->Observe(seconds);
    if (method_->quiet || access_log_policy_ == AccessLog::kOff ||
        (access_log_policy_ == AccessLog::kErrors && status.ok())) {
      return;
    }
    // Built in place: an initializer list's pairs are copies (two more
    // strings on the heap per logged call).
    access_log_.reserve(7);
    access_log_.emplace_back("method", method_->full_name);
    access_log_.emplace_back("code", code);
    access_log_.emplace_back("duration_ms", absl::StrCat(seconds * 1000));
    grpc::ServerContextBase* context = info_->server_context();
    access_log_.emplace_back("peer", context->peer());
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata = context->client_metadata();
    if (auto it = metadata.find("x-request-id"); it != metadata.end() && !it->second.empty()) {
      access_log_.emplace_back("request_id", std::string(it->second.data(), it->second.size()));
    }
    if (auto it = metadata.find("traceparent"); it != metadata.end()) {
      if (std::string trace_id = TraceId(absl::string_view(it->second.data(), it->second.size()));
          !trace_id.empty()) {
        access_log_.emplace_back("trace_id", std::move(trace_id));
      }
    }
    // Named only for a call that is logged: with access_log "errors" most
    // calls are not, and naming a caller the deployment does not identify
    // builds an UNAUTHENTICATED status with its details (0.8 % of the
    // gateway's CPU in a perf profile of EvaluateFlags, issue 18). The
    // metadata lives as long as the call. A deployment that trusts no
    // identity names no caller: asking would build that status for every
    // logged call (1.2-1.4 % of the gateway's CPU per durable CaptureEvent
    // in development mode, access_log "all", the capture benchmark).
    if (!authorizer_->IdentifiesCallers()) {
      // Nobody to name.
    } else if (absl::StatusOr<Caller> caller = authorizer_->Identify(*context);
               caller.ok() && !caller->name.empty()) {
      access_log_.emplace_back("caller", std::move(caller->name));
    }
    access_log_severity_ = status.ok() ? LogSeverity::kInfo : LogSeverity::kWarning;
  }

  ServerRpcInfo* info_;
  MethodInfo* method_;
  // The call's access-log line, written when the call is torn down (after
  // its status went out), so that no caller waits for the log's write.
  LogFields access_log_;
  LogSeverity access_log_severity_ = LogSeverity::kInfo;
  Counter* handled_;
  const Authorizer* const authorizer_;
  const AccessLog access_log_policy_;
  const absl::Time start_;
};

}  // namespace

bool IsKnownMethod(absl::string_view service, absl::string_view method) {
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  return descriptor != nullptr && descriptor->FindMethodByName(std::string(method)) != nullptr;
}

ObservabilityInterceptorFactory::ObservabilityInterceptorFactory(MetricsRegistry* registry,
                                                                 const Authorizer* authorizer,
                                                                 AccessLog access_log)
    : started_(registry->AddCounter("grpc_server_started_total",
                                    "Total number of RPCs started on the server.",
                                    {"grpc_type", "grpc_service", "grpc_method"})),
      handled_(registry->AddCounter(
          "grpc_server_handled_total",
          "Total number of RPCs completed on the server, regardless of success or failure.",
          {"grpc_type", "grpc_service", "grpc_method", "grpc_code"})),
      handling_seconds_(registry->AddHistogram(
          "grpc_server_handling_seconds",
          "Histogram of response latency (seconds) of gRPC that had been application-level "
          "handled by the server.",
          {"grpc_type", "grpc_service", "grpc_method"}, MetricsRegistry::LatencyBuckets())),
      authorizer_(authorizer),
      access_log_(access_log) {}

ObservabilityInterceptorFactory::MethodInfo* ObservabilityInterceptorFactory::Method(
    const grpc::experimental::ServerRpcInfo& info) {
  const absl::string_view path = info.method();  // "/pkg.Service/Method"
  absl::MutexLock lock(&mu_);
  if (auto found = methods_.find(path); found != methods_.end()) return found->second.get();
  const size_t slash = path.rfind('/');
  const std::string service(path.substr(1, slash == 0 ? 0 : slash - 1));
  const std::string method(path.substr(slash + 1));
  // Any caller may name any method: only the methods of the services linked
  // into the binary get their own series (and an entry here); every other
  // name shares one, so that unknown names cannot add series forever.
  if (!IsKnownMethod(service, method)) {
    if (unknown_ == nullptr) {
      unknown_ = std::make_unique<MethodInfo>();
      unknown_->service = std::string(kUnknownMethodLabel);
      unknown_->method = std::string(kUnknownMethodLabel);
      unknown_->type = std::string(kUnknownMethodLabel);
      unknown_->full_name = std::string(kUnknownMethodLabel);
      unknown_->started =
          started_->WithLabels({unknown_->type, unknown_->service, unknown_->method});
      unknown_->handling_seconds =
          handling_seconds_->WithLabels({unknown_->type, unknown_->service, unknown_->method});
    }
    return unknown_.get();
  }
  std::unique_ptr<MethodInfo>& entry = methods_[path];
  entry = std::make_unique<MethodInfo>();
  entry->service = service;
  entry->method = method;
  entry->type = TypeName(info.type());
  entry->full_name = absl::StrCat(entry->service, "/", entry->method);
  entry->quiet = absl::StartsWith(entry->service, "grpc.health.") ||
                 absl::StartsWith(entry->service, "grpc.reflection.");
  entry->started = started_->WithLabels({entry->type, entry->service, entry->method});
  entry->handling_seconds =
      handling_seconds_->WithLabels({entry->type, entry->service, entry->method});
  return entry.get();
}

grpc::experimental::Interceptor* ObservabilityInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ObservabilityInterceptor(info, Method(*info), handled_, authorizer_, access_log_);
}

}  // namespace posthog_gateway
