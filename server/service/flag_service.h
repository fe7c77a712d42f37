#ifndef SERVER_SERVICE_FLAG_SERVICE_H_
#define SERVER_SERVICE_FLAG_SERVICE_H_

// FlagServiceImpl serves posthog.v1.FlagService:
// - EvaluateFlag(s) decide locally from each project's DefinitionsStore and
//   make ONE `POST /flags?v=2` call per request for whatever could not be
//   decided locally (unless `only_local`); optionally record
//   `$feature_flag_called` events, deduplicated, through a FlagCalledSink.
//   They use gRPC's callback API, with request and response on an arena
//   (ArenaMessageAllocator): a call decided locally runs on the thread that
//   read it, with no handoff to a sync-server thread and no heap allocation
//   per result; only a call that asks PostHog moves to a thread of its own
//   (BlockingCalls), at most flags.max_remote_evaluations at once: past
//   that, its undecided flags are answered with an error at once. Together this cut the gateway's
//   CPU per 50-flag call by about a quarter.
// - WatchFlagDefinitions streams a project's definitions and their changes
//   through the project's DefinitionsWatch: callback reactors, one thread
//   per project, each change serialized once for every stream.
// - GetFlag, CreateFlag, UpdateFlag, DeleteFlag call PostHog's REST API.
// - ListFlags streams PostHog's flag list (`GET /api/projects/:id/
//   feature_flags/`, newest first, deleted flags left out) through the shared
//   list streaming (StreamList: look-ahead pages, resume tokens scoped to
//   "flags" and the project, `limit` over resumed calls), each flag converted
//   as GetFlag converts it.
// - One RequestPacer per project keeps every flag REST request (lists,
//   reads, writes: they share PostHog's per-key throttle) under
//   paging.flags_per_minute/hour; a 429 holds them all back for the time
//   PostHog named.
//
// Thread-safe. Borrows the registry, stores, sinks, token codec and clock,
// which must outlive it.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/common/clock.h"
#include "server/config/config.h"
#include "server/flags/definitions_store.h"
#include "server/flags/evaluator.h"
#include "server/flags/flag_called.h"
#include "server/flags/flags_api.h"
#include "server/grpc/arena_message_allocator.h"
#include "server/grpc/blocking_calls.h"
#include "server/grpc/stream_limits.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/request_pacer.h"
#include "server/paging/resume_token.h"
#include "server/posthog/call_context.h"
#include "server/posthog/project_registry.h"
#include "server/service/definitions_watch.h"
#include "server/service/flag_results.h"

namespace posthog_gateway {

// What FlagServiceImpl needs per project.
struct FlagProject {
  flags::DefinitionsStore* definitions = nullptr;
  flags::FlagCalledSink* flag_called = nullptr;
};

class FlagServiceImpl final
    : public posthog::v1::FlagService::WithCallbackMethod_EvaluateFlag<
          posthog::v1::FlagService::WithRawCallbackMethod_EvaluateFlags<
              posthog::v1::FlagService::WithRawCallbackMethod_WatchFlagDefinitions<
                  posthog::v1::FlagService::Service>>> {
 public:
  // Every handler first asks `authorizer` (server/authz/authorizer.h); the
  // default allows every call, for tests of the handlers alone.
  // `projects_by_alias` has an entry for every configured project alias.
  // `clock` is the time of evaluations and of list pacing and tokens.
  FlagServiceImpl(const ProjectRegistry* projects,
                  std::map<std::string, FlagProject> projects_by_alias, FlagsConfig options,
                  PagingConfig paging, const ResumeTokenCodec* tokens, Clock* clock,
                  SharedBudget* shared_budget = nullptr,
                  const Authorizer* authorizer = Authorizer::AllowAll(),
                  FetchPool* fetch_pool = nullptr,
                  StreamLimits* streams = StreamLimits::Unlimited());

  // Evaluate is EvaluateFlag(s)'s evaluation for the gateway's other front
  // doors (OpenFeature's flagd protocol and OFREP): the same checks, local
  // pass, remote fallback (bounded by flags.max_remote_evaluations) and
  // `$feature_flag_called` events. `keys` empty means every flag.
  // `call_context` gives what a PostHog call inherits (deadline,
  // cancellation, trace headers); it is called only when PostHog is asked.
  // `finish` is called once: on this thread when the flags are decided
  // locally, else on a thread of BlockingCalls; the results it is given live
  // until it returns.
  using EvaluateDone = absl::AnyInvocable<void(absl::StatusOr<const FlagResults*>) &&>;
  void Evaluate(std::function<CallContext()> call_context, const std::string& project,
                const std::vector<std::string>& keys, const posthog::v1::EvaluationContext& who,
                const posthog::v1::EvaluationOptions& options, EvaluateDone finish);

  // The methods served raw, which parse their requests themselves
  // (NamedService::raw_methods).
  static constexpr absl::string_view kRawMethods[] = {"EvaluateFlags", "WatchFlagDefinitions"};

  // Shutdown ends every WatchFlagDefinitions stream (UNAVAILABLE). Idempotent.
  void Shutdown();

  // The WatchFlagDefinitions streams open, by project alias (projects with
  // definitions only).
  std::map<std::string, size_t> WatchStreams() const;

  grpc::ServerUnaryReactor* EvaluateFlag(grpc::CallbackServerContext* context,
                                         const posthog::v1::EvaluateFlagRequest* request,
                                         posthog::v1::EvaluateFlagResponse* response) override;
  // Raw: takes a serialized EvaluateFlagsRequest and writes the
  // EvaluateFlagsResponse's bytes itself (FlagResults::EncodeResponse).
  grpc::ServerUnaryReactor* EvaluateFlags(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  // Raw: takes a serialized WatchFlagDefinitionsRequest; the messages are
  // DefinitionsWatch's shared bytes.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchFlagDefinitions(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;
  grpc::Status ListFlags(grpc::ServerContext* context, const posthog::v1::ListFlagsRequest* request,
                         grpc::ServerWriter<posthog::v1::ListFlagsResponse>* writer) override;
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
  // One EvaluateFlag(s) call between its local pass and its completion.
  struct Evaluation {
    const PostHogClient* client = nullptr;
    const FlagProject* flag_project = nullptr;
    posthog::v1::EvaluationOptions options;
    flags::EvaluationContext context;
    std::shared_ptr<const flags::DefinitionsSnapshot> snapshot;
    absl::Time now;
    // The keys the local pass could not decide, each with why.
    std::vector<std::pair<std::string, std::string>> undecided;
    // No definitions and no keys asked: every flag is PostHog's to name.
    bool all_flags_unknown = false;
    FlagResults results;
    // Set by Complete.
    std::string request_id;
    // Too many evaluations already wait for PostHog: Complete does not ask.
    bool posthog_busy = false;

    // Whether Complete asks PostHog (and so blocks).
    bool NeedsPostHog() const;
  };

  // EvaluateLocally checks the request and records what the definitions
  // decide for `keys` (every flag when empty; each key once). Never blocks.
  absl::StatusOr<std::unique_ptr<Evaluation>> EvaluateLocally(
      const std::string& project, const std::vector<std::string>& keys,
      const posthog::v1::EvaluationContext& who, const posthog::v1::EvaluationOptions& options);

  // Complete asks PostHog for the undecided keys (one `POST /flags?v=2`,
  // under `call`) when NeedsPostHog, records their results, the
  // `$feature_flag_called` events asked for and the request id.
  void Complete(Evaluation& evaluation, const CallContext& call);

  // EvaluateAndFinish runs both passes, the second on a thread of its own
  // when it asks PostHog, then calls `finish` with the completed Evaluation
  // or the request's error.
  template <typename Finish>
  void EvaluateAndFinish(std::function<CallContext()> call_context, const std::string& project,
                         const std::vector<std::string>& keys,
                         const posthog::v1::EvaluationContext& who,
                         const posthog::v1::EvaluationOptions& options, Finish finish);

  // RestApi is PostHog's flag REST resource for `client`'s project, each
  // request in its turn of the project's pacer.
  flags::FlagsApi RestApi(const PostHogClient* client);

  const ProjectRegistry* projects_;
  const std::map<std::string, FlagProject> projects_by_alias_;
  const FlagsConfig options_;
  const PagingConfig paging_;
  const ResumeTokenCodec* tokens_;
  Clock* clock_;
  const Authorizer* authorizer_;
  // Where ListFlags fetches pages (FetchPool::Default() when null).
  FetchPool* fetch_pool_;
  // ListFlags and WatchFlagDefinitions streams open at once.
  StreamLimits* streams_;
  // Flag REST requests per project, under paging.flags_per_minute/hour.
  ProjectPacers pacers_;
  flags::FlagCalledDeduplicator flag_called_seen_;
  // The WatchFlagDefinitions streams of each project that has definitions.
  std::map<std::string, std::unique_ptr<DefinitionsWatch>> watches_;
  ArenaMessageAllocator<posthog::v1::EvaluateFlagRequest, posthog::v1::EvaluateFlagResponse>
      evaluate_flag_messages_;
  // EvaluateFlag(s) calls waiting for PostHog, at most
  // flags.max_remote_evaluations; last, so destroyed (and waited for) first.
  BlockingCalls remote_evaluations_;
};

}  // namespace posthog_gateway

#endif  // SERVER_SERVICE_FLAG_SERVICE_H_
