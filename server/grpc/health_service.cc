#include "server/grpc/health_service.h"

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace posthog_gateway {

using grpc::health::v1::HealthCheckResponse;

// One Watch stream. It holds the status last sent and writes whenever the
// service's status for its name differs; one write at a time. It lives
// until gRPC calls OnDone, and while the service is waking it (a reference
// each), so that a wake-up never touches a deleted reactor.
//
// gRPC may run a reaction inline, so Start*/Finish are never called with a
// lock held.
class HealthService::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, std::string name) : service_(service), name_(std::move(name)) {}

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Look writes the service's current status if it is news, or ends the
  // stream once the service shut down and NOT_SERVING went out.
  void Look() {
    ServingStatus status;
    bool shut_down;
    {
      absl::ReaderMutexLock lock(&service_->mu_);
      status = service_->StatusOf(name_);
      shut_down = service_->shut_down_;
    }
    bool write = false;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;  // OnWriteDone looks again.
      if (!sent_any_ || status != sent_) {
        writing_ = true;
        response_.set_status(status);
        write = true;
      } else if (shut_down) {
        finished_ = true;
        finish = true;
      }
    }
    if (write) StartWrite(&response_);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) {
        sent_any_ = true;
        sent_ = response_.status();
      } else {
        finished_ = true;  // The caller left.
      }
    }
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    Look();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;  // A write in flight fails, then finishes.
      finished_ = true;
    }
    Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service_->Unregister(this);
    Unref();
  }

 private:
  HealthService* const service_;
  const std::string name_;
  std::atomic<int> refs_{1};  // gRPC's, dropped in OnDone.
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_any_ ABSL_GUARDED_BY(mu_) = false;
  ServingStatus sent_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
};

void HealthService::SetServing(const std::string& name, bool serving) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    auto [it, inserted] = serving_.emplace(name, serving);
    if (!inserted && it->second == serving) return;
    it->second = serving;
  }
  WakeWatchers();
}

void HealthService::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (auto& [name, serving] : serving_) serving = false;
  }
  WakeWatchers();
}

void HealthService::WakeWatchers() {
  std::vector<Watcher*> watchers;
  {
    absl::MutexLock lock(&mu_);
    for (Watcher* watcher : watchers_) {
      watcher->Ref();
      watchers.push_back(watcher);
    }
  }
  for (Watcher* watcher : watchers) {
    watcher->Look();
    watcher->Unref();
  }
}

void HealthService::Unregister(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

size_t HealthService::WatchersForTesting() const {
  absl::ReaderMutexLock lock(&mu_);
  return watchers_.size();
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

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext*, const grpc::health::v1::HealthCheckRequest* request) {
  auto* watcher = new Watcher(this, request->service());
  {
    absl::MutexLock lock(&mu_);
    watchers_.insert(watcher);
  }
  watcher->Look();  // The first status goes out at once.
  return watcher;
}

}  // namespace posthog_gateway
