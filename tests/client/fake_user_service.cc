#include "tests/client/fake_user_service.h"

#include <chrono>

namespace posthog_client {

void FakeUserService::SetResponse(const posthog::v1::GetCurrentUserResponse& response) {
  absl::MutexLock lock(&mutex_);
  response_ = response;
}

void FakeUserService::SetStatus(const grpc::Status& status) {
  absl::MutexLock lock(&mutex_);
  status_ = status;
}

std::vector<FakeUserService::Call> FakeUserService::calls() const {
  absl::MutexLock lock(&mutex_);
  return calls_;
}

grpc::Status FakeUserService::GetCurrentUser(grpc::ServerContext* context,
                                             const posthog::v1::GetCurrentUserRequest* request,
                                             posthog::v1::GetCurrentUserResponse* response) {
  Call call;
  call.project = request->project();
  for (const auto& [key, value] : context->client_metadata()) {
    call.metadata.emplace(std::string(key.data(), key.size()),
                          std::string(value.data(), value.size()));
  }
  call.has_deadline = context->deadline() != std::chrono::system_clock::time_point::max();
  absl::MutexLock lock(&mutex_);
  calls_.push_back(std::move(call));
  if (!status_.ok()) return status_;
  *response = response_;
  return grpc::Status::OK;
}

InProcessServer::InProcessServer(const std::vector<grpc::Service*>& services) {
  grpc::ServerBuilder builder;
  for (grpc::Service* service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
}

InProcessServer::~InProcessServer() { server_->Shutdown(); }

std::shared_ptr<grpc::Channel> InProcessServer::NewChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

}  // namespace posthog_client
