#ifndef TESTS_CLIENT_FAKE_USER_SERVICE_H_
#define TESTS_CLIENT_FAKE_USER_SERVICE_H_

// Test doubles for the client: FakeUserService, a real UserService that
// answers from a script and records its calls, and InProcessServer, which
// serves services to an in-process channel (no port, no network).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/user.grpc.pb.h"

namespace posthog_client {

// FakeUserService answers every GetCurrentUser with the scripted response,
// or the scripted status when one is set, and records each call.
// Thread-safe.
class FakeUserService final : public posthog::v1::UserService::Service {
 public:
  // One recorded call.
  struct Call {
    std::string project;
    // The call's custom metadata (gRPC's own `:path`, `user-agent`, ... are
    // included too; look keys up rather than comparing the whole map).
    std::multimap<std::string, std::string> metadata;
    bool has_deadline = false;
  };

  void SetResponse(const posthog::v1::GetCurrentUserResponse& response) ABSL_LOCKS_EXCLUDED(mutex_);
  void SetStatus(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mutex_);
  std::vector<Call> calls() const ABSL_LOCKS_EXCLUDED(mutex_);

  grpc::Status GetCurrentUser(grpc::ServerContext* context,
                              const posthog::v1::GetCurrentUserRequest* request,
                              posthog::v1::GetCurrentUserResponse* response) override
      ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  mutable absl::Mutex mutex_;
  posthog::v1::GetCurrentUserResponse response_ ABSL_GUARDED_BY(mutex_);
  grpc::Status status_ ABSL_GUARDED_BY(mutex_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mutex_);
};

// InProcessServer serves `services` (not owned; they must outlive it) until
// destroyed, and hands out channels to them.
class InProcessServer final {
 public:
  explicit InProcessServer(const std::vector<grpc::Service*>& services);
  ~InProcessServer();
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  std::shared_ptr<grpc::Channel> NewChannel();

 private:
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace posthog_client

#endif  // TESTS_CLIENT_FAKE_USER_SERVICE_H_
