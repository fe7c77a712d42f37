#ifndef SERVER_SERVICE_FLAG_SERVICE_H_
#define SERVER_SERVICE_FLAG_SERVICE_H_

// FlagServiceImpl serves posthog.v1.FlagService:
// - EvaluateFlag(s) decide locally from each project's DefinitionsStore and
//   make ONE `POST /flags?v=2` call per request for whatever could not be
//   decided locally (unless `only_local`); optionally record
//   `$feature_flag_called` events, deduplicated, through a FlagCalledSink.
// - WatchFlagDefinitions streams a project's definitions and their changes.
// - GetFlag, CreateFlag, UpdateFlag, DeleteFlag call PostHog's REST API.
// - ListFlags stays UNIMPLEMENTED until the shared paging engine (being built
//   for PersonService.ListPersons) lands; it will stream over it.
//
// Thread-safe. Borrows the registry, stores and sinks, which must outlive it.

#include <functional>
#include <map>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/flags/definitions_store.h"
#include "server/flags/flag_called.h"
#include "server/posthog/project_registry.h"

namespace posthog_gateway {

// What FlagServiceImpl needs per project.
struct FlagProject {
  flags::DefinitionsStore* definitions = nullptr;
  flags::FlagCalledSink* flag_called = nullptr;
};

class FlagServiceImpl final : public posthog::v1::FlagService::Service {
 public:
  using Clock = std::function<absl::Time()>;

  // `projects_by_alias` has an entry for every configured project alias.
  FlagServiceImpl(const ProjectRegistry* projects,
                  std::map<std::string, FlagProject> projects_by_alias,
                  FlagsConfig options, Clock clock = nullptr);

  // Shutdown ends every WatchFlagDefinitions stream (UNAVAILABLE). Idempotent.
  void Shutdown();

  grpc::Status EvaluateFlag(grpc::ServerContext* context,
                            const posthog::v1::EvaluateFlagRequest* request,
                            posthog::v1::EvaluateFlagResponse* response) override;
  grpc::Status EvaluateFlags(grpc::ServerContext* context,
                             const posthog::v1::EvaluateFlagsRequest* request,
                             posthog::v1::EvaluateFlagsResponse* response) override;
  grpc::Status WatchFlagDefinitions(
      grpc::ServerContext* context, const posthog::v1::WatchFlagDefinitionsRequest* request,
      grpc::ServerWriter<posthog::v1::WatchFlagDefinitionsResponse>* writer) override;
  grpc::Status GetFlag(grpc::ServerContext* context, const posthog::v1::GetFlagRequest* request,
                       posthog::v1::GetFlagResponse* response) override;
  grpc::Status CreateFlag(grpc::ServerContext* context,
                          const posthog::v1::CreateFlagRequest* request,
                          posthog::v1::CreateFlagResponse* response) override;
  grpc::Status UpdateFlag(grpc::ServerContext* context,
                          const posthog::v1::UpdateFlagRequest* request,
                          posthog::v1::UpdateFlagResponse* response) override;
  grpc::Status DeleteFlag(grpc::ServerContext* context,
                          const posthog::v1::DeleteFlagRequest* request,
                          posthog::v1::DeleteFlagResponse* response) override;

 private:
  // Evaluate fills `results` for `keys` (every flag when empty) and returns
  // the request id.
  absl::StatusOr<std::string> Evaluate(
      grpc::ServerContext* context, const std::string& project,
      const std::vector<std::string>& keys, const posthog::v1::EvaluationContext& who,
      const posthog::v1::EvaluationOptions& options,
      google::protobuf::Map<std::string, posthog::v1::FlagResult>* results);

  const ProjectRegistry* projects_;
  const std::map<std::string, FlagProject> projects_by_alias_;
  const FlagsConfig options_;
  const Clock clock_;
  flags::FlagCalledDeduplicator flag_called_seen_;
  absl::Notification shutdown_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_FLAG_SERVICE_H_
