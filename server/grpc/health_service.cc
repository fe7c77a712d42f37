#include "server/grpc/health_service.h"

#include "absl/time/time.h"

namespace posthog_gateway {
namespace {

using grpc::health::v1::HealthCheckResponse;

// How often a Watch stream with nothing to say checks whether its caller left.
constexpr absl::Duration kCancellationPoll = absl::Milliseconds(500);

}  // namespace

void HealthService::SetServing(const std::string& name, bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  auto [it, inserted] = serving_.emplace(name, serving);
  if (!inserted && it->second == serving) return;
  it->second = serving;
  ++version_;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (auto& [name, serving] : serving_) serving = false;
  ++version_;
}

HealthService::ServingStatus HealthService::StatusOf(const std::string& name) const {
  auto it = serving_.find(name);
  if (it == serving_.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
  return it->second ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const grpc::health::v1::HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ServingStatus status;
  {
    absl::ReaderMutexLock lock(&mu_);
    status = StatusOf(request->service());
  }
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::Status HealthService::Watch(
    grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
    grpc::ServerWriter<HealthCheckResponse>* writer) {
  uint64_t seen_version = 0;
  ServingStatus sent = HealthCheckResponse::UNKNOWN;
  bool first = true;
  while (!context->IsCancelled()) {
    ServingStatus status;
    bool shut_down;
    {
      absl::MutexLock lock(&mu_);
      const uint64_t known = seen_version;
      auto changed = [this, known]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return version_ != known;
      };
      if (!first) mu_.AwaitWithTimeout(absl::Condition(&changed), kCancellationPoll);
      seen_version = version_;
      status = StatusOf(request->service());
      shut_down = shut_down_;
    }
    if (first || status != sent) {
      HealthCheckResponse response;
      response.set_status(status);
      if (!writer->Write(response)) return grpc::Status::OK;  // The caller left.
      sent = status;
      first = false;
    }
    if (shut_down) return grpc::Status::OK;
  }
  return grpc::Status::CANCELLED;
}

}  // namespace posthog_gateway
