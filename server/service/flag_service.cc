#include "server/service/flag_service.h"

#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/common/error_details.h"
#include "server/common/request_limits.h"
#include "server/flags/evaluator.h"
#include "server/flags/flag_json.h"
#include "server/flags/flags_api.h"
#include "server/grpc/call_context.h"
#include "server/grpc/status_conversion.h"
#include "server/posthog/json_struct.h"
#include "server/service/stream_list.h"
#include "server/service/struct_properties.h"

namespace posthog_gateway {

using posthog::v1::FlagResult;

namespace {

// A random (version 4) UUID, lower-case hex: one per call, so written by hand
// rather than through absl::StrFormat.
std::string NewUuid() {
  thread_local absl::BitGen gen;
  uint64_t high = absl::Uniform<uint64_t>(gen);
  uint64_t low = absl::Uniform<uint64_t>(gen);
  high = (high & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // Version 4.
  low = (low & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;    // Variant 1.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string uuid(36, '-');
  int at = 0;
  for (int nibble = 0; nibble < 32; ++nibble) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    const uint64_t word = nibble < 16 ? high : low;
    uuid[at++] = kHex[(word >> (60 - 4 * (nibble % 16))) & 0xF];
  }
  return uuid;
}

posthog::v1::FlagReasonCode ReasonFromString(absl::string_view code) {
  static const std::pair<const char*, posthog::v1::FlagReasonCode> kCodes[] = {
      {"condition_match", posthog::v1::FLAG_REASON_CODE_CONDITION_MATCH},
      {"no_condition_match", posthog::v1::FLAG_REASON_CODE_NO_CONDITION_MATCH},
      {"out_of_rollout_bound", posthog::v1::FLAG_REASON_CODE_OUT_OF_ROLLOUT_BOUND},
      {"no_group_type", posthog::v1::FLAG_REASON_CODE_NO_GROUP_TYPE},
      {"super_condition_value", posthog::v1::FLAG_REASON_CODE_SUPER_CONDITION_VALUE},
      {"holdout_condition_value", posthog::v1::FLAG_REASON_CODE_HOLDOUT_CONDITION_VALUE},
      {"flag_disabled", posthog::v1::FLAG_REASON_CODE_FLAG_DISABLED},
      {"missing_dependency", posthog::v1::FLAG_REASON_CODE_MISSING_DEPENDENCY},
  };
  for (const auto& [name, value] : kCodes) {
    if (code == name) return value;
  }
  return posthog::v1::FLAG_REASON_CODE_ERROR;
}

FlagResult ErrorResult(const std::string& key, posthog::v1::FlagErrorCode code,
                       std::string message) {
  FlagResult result;
  result.set_key(key);
  result.set_error_code(code);
  result.set_error_message(std::move(message));
  result.mutable_reason()->set_code(posthog::v1::FLAG_REASON_CODE_ERROR);
  return result;
}

FlagResult RemoteResult(const std::string& key, const flags::RemoteFlag& remote) {
  FlagResult result;
  result.set_key(key);
  result.set_enabled(remote.enabled);
  result.set_variant(remote.variant);
  if (!remote.payload.is_null()) *result.mutable_payload() = ValueFromJson(remote.payload);
  result.mutable_reason()->set_code(ReasonFromString(remote.reason_code));
  result.mutable_reason()->set_description(remote.reason_description);
  if (remote.condition_index >= 0) {
    result.mutable_reason()->set_condition_index(remote.condition_index);
  }
  result.set_source(posthog::v1::FLAG_DECISION_SOURCE_REMOTE);
  result.set_flag_id(remote.id);
  result.set_flag_version(remote.version);
  if (remote.failed) {
    result.set_error_code(posthog::v1::FLAG_ERROR_CODE_GENERAL);
    result.set_error_message(
        absl::StrCat("PostHog could not evaluate the flag (", remote.reason_code, ")"));
  }
  return result;
}

// The keys asked for, each once, in the order first asked.
std::vector<std::string> UniqueKeys(const std::vector<std::string>& keys) {
  std::vector<std::string> unique;
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& key : keys) {
    if (seen.insert(key).second) unique.push_back(key);
  }
  return unique;
}

// Fills the fresh `context` from `who`, but for the person's properties: the
// caller either sets a PropertyLookup over who.person_properties() or
// converts them. In place: a context returned by value and moved in was one
// more to build and free per call.
void ContextFromProto(const posthog::v1::EvaluationContext& who,
                      flags::EvaluationContext* context) {
  context->distinct_id = who.distinct_id();
  context->device_id = who.device_id();
  for (const auto& [type, key] : who.groups()) context->groups[type] = key;
  for (const auto& [type, properties] : who.group_properties()) {
    context->group_properties[type] = JsonFromStruct(properties);
  }
}

}  // namespace

FlagServiceImpl::FlagServiceImpl(const ProjectRegistry* projects,
                                 std::map<std::string, FlagProject> projects_by_alias,
                                 FlagsConfig options, PagingConfig paging,
                                 const ResumeTokenCodec* tokens, Clock* clock,
                                 SharedBudget* shared_budget, const Authorizer* authorizer,
                                 FetchPool* fetch_pool, StreamLimits* streams)
    : projects_(projects),
      projects_by_alias_(std::move(projects_by_alias)),
      options_(options),
      paging_(std::move(paging)),
      tokens_(tokens),
      clock_(clock),
      authorizer_(authorizer),
      fetch_pool_(fetch_pool),
      streams_(streams),
      pacers_(
          {{paging_.flags_per_minute, absl::Minutes(1)}, {paging_.flags_per_hour, absl::Hours(1)}},
          clock, shared_budget, "flags"),
      flag_called_seen_(static_cast<size_t>(std::max<int64_t>(1, options.flag_called_cache_size))),
      remote_evaluations_(options.max_remote_evaluations) {
  SetMessageAllocatorFor_EvaluateFlag(&evaluate_flag_messages_);
  for (const auto& [alias, project] : projects_by_alias_) {
    if (project.definitions != nullptr) {
      watches_[alias] =
          std::make_unique<DefinitionsWatch>(project.definitions, options_.watch_heartbeat);
    }
  }
}

void FlagServiceImpl::Shutdown() {
  for (auto& [alias, watch] : watches_) watch->Shutdown();
}

flags::FlagsApi FlagServiceImpl::RestApi(const PostHogClient* client) {
  return flags::FlagsApi(client, pacers_.For(client->project().alias));
}

std::map<std::string, size_t> FlagServiceImpl::WatchStreams() const {
  std::map<std::string, size_t> streams;
  for (const auto& [alias, watch] : watches_) streams[alias] = watch->Streams();
  return streams;
}

absl::StatusOr<std::unique_ptr<FlagServiceImpl::Evaluation>> FlagServiceImpl::EvaluateLocally(
    const std::string& project, const std::vector<std::string>& keys,
    const posthog::v1::EvaluationContext& who, const posthog::v1::EvaluationOptions& options) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(project);
  if (!client.ok()) return client.status();
  if (who.distinct_id().empty()) {
    return InvalidArgumentWithViolations("a distinct id is required",
                                         {{"context.distinct_id", "must not be empty"}});
  }
  if (!posthog::v1::GeoipMode_IsValid(options.geoip())) {
    return InvalidArgumentWithViolations("unknown GeoIP mode",
                                         {{"options.geoip", "must be a GeoipMode value"}});
  }
  auto found = projects_by_alias_.find((*client)->project().alias);
  if (found == projects_by_alias_.end() || !(*client)->project().project_api_key.configured()) {
    return absl::FailedPreconditionError(
        "feature flags need the project API key, and none is configured for this project");
  }
  auto evaluation = std::make_unique<Evaluation>();
  Evaluation& e = *evaluation;
  e.client = *client;
  e.flag_project = &found->second;
  e.options = options;
  ContextFromProto(who, &e.context);
  if (options.geoip() == posthog::v1::GEOIP_MODE_ENABLED) e.context.disable_geoip = false;
  if (options.geoip() == posthog::v1::GEOIP_MODE_DISABLED) e.context.disable_geoip = true;
  // Without a key that can fetch definitions, every flag is asked remotely.
  e.snapshot =
      e.flag_project->definitions != nullptr ? e.flag_project->definitions->Current() : nullptr;
  const flags::CompiledDefinitions* definitions =
      e.snapshot != nullptr ? e.snapshot->definitions.get() : nullptr;
  e.now = clock_->Now();

  // The local evaluation reads the person's properties from the request,
  // converting only those the definitions filter on; PostHog is sent all of
  // them as JSON (below).
  const StructProperties person(&who.person_properties());
  e.context.person_lookup = &person;
  // The flags of one call read the same few properties: each is looked up
  // and parsed once. One cache per thread, forgotten per call, keeps its
  // memory from call to call.
  thread_local flags::EvaluationCache cache;
  cache.Forget();
  auto evaluate_one = [&](const std::string& key, const flags::CompiledFlag* flag) {
    flags::FlagEvaluation evaluation =
        flags::EvaluateFlag(*definitions, *flag, e.context, e.now, &cache);
    if (evaluation.decided) {
      // The flag's key in the definitions (which `key` equals), which the
      // snapshot the results borrow from keeps alive.
      e.results.SetLocalBorrowed(flags::CompiledDefinitions::FlagKey(*flag), evaluation);
    } else {
      e.undecided.emplace_back(key, evaluation.inconclusive_reason);
    }
  };
  if (definitions == nullptr) {
    const char* why = e.snapshot == nullptr ? "no key that can fetch flag definitions is configured"
                      : e.snapshot->quota_limited ? "flag quota exceeded (402)"
                                                  : "flag definitions are not loaded yet";
    if (keys.empty()) {
      e.all_flags_unknown = true;
    } else {
      for (const std::string& key : UniqueKeys(keys)) e.undecided.emplace_back(key, why);
    }
  } else if (keys.empty()) {
    e.results.Reserve(definitions->flags().size());
    for (const auto& flag : definitions->flags()) {
      evaluate_one(flags::CompiledDefinitions::FlagKey(*flag), flag.get());
    }
  } else {
    for (const std::string& key : UniqueKeys(keys)) {
      const flags::CompiledFlag* flag = definitions->Find(key);
      if (flag == nullptr) {
        e.undecided.emplace_back(key, "no flag has this key in the local definitions");
      } else {
        evaluate_one(key, flag);
      }
    }
  }
  // The lookup reads `who`, which need not outlive this call; the rest of
  // the call (PostHog's /flags) reads the JSON.
  e.context.person_lookup = nullptr;
  if (e.NeedsPostHog() && who.has_person_properties()) {
    e.context.person_properties = JsonFromStruct(who.person_properties());
  }
  return evaluation;
}

bool FlagServiceImpl::Evaluation::NeedsPostHog() const {
  return (!undecided.empty() || all_flags_unknown) && !options.only_local();
}

void FlagServiceImpl::Complete(Evaluation& e, const CallContext& call) {
  const flags::CompiledDefinitions* definitions =
      e.snapshot != nullptr ? e.snapshot->definitions.get() : nullptr;
  const flags::EvaluationContext& context = e.context;
  const auto& undecided = e.undecided;
  const absl::Time now = e.now;
  FlagResults& results = e.results;
  const posthog::v1::EvaluationOptions& options = e.options;
  const FlagProject& flag_project = *e.flag_project;
  std::string request_id;
  flags::RemoteEvaluation remote;
  bool asked_remote = false;
  if (e.NeedsPostHog()) {
    std::vector<std::string> remote_keys;
    for (const auto& entry : undecided) remote_keys.push_back(entry.first);
    flags::FlagsApi api(e.client);
    absl::StatusOr<flags::RemoteEvaluation> answer =
        e.posthog_busy
            ? absl::ResourceExhaustedError(absl::StrCat(
                  options_.max_remote_evaluations,
                  " evaluations are already waiting for it (flags.max_remote_evaluations)"))
            : api.RemoteEvaluate(context, remote_keys, call);
    if (!answer.ok()) {
      for (const auto& [key, why] : undecided) {
        results.Set(key, ErrorResult(key, posthog::v1::FLAG_ERROR_CODE_GENERAL,
                                     absl::StrCat("not decidable locally (", why,
                                                  ") and PostHog could not be asked: ",
                                                  answer.status().message())));
      }
    } else {
      asked_remote = true;
      remote = *std::move(answer);
      request_id = remote.request_id;
      if (e.all_flags_unknown) {
        for (const auto& [key, flag] : remote.flags) results.Set(key, RemoteResult(key, flag));
      }
      for (const auto& [key, why] : undecided) {
        auto it = remote.flags.find(key);
        if (it != remote.flags.end()) {
          results.Set(key, RemoteResult(key, it->second));
        } else if (remote.quota_limited) {
          results.Set(key, ErrorResult(key, posthog::v1::FLAG_ERROR_CODE_GENERAL,
                                       "PostHog's flag quota is exceeded"));
        } else {
          results.Set(key, ErrorResult(key, posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND,
                                       absl::StrCat("no flag has the key `", key, "`")));
        }
      }
    }
  } else {
    for (const auto& [key, why] : undecided) {
      const bool unknown = definitions != nullptr && definitions->Find(key) == nullptr;
      results.Set(key, unknown ? ErrorResult(key, posthog::v1::FLAG_ERROR_CODE_FLAG_NOT_FOUND,
                                             absl::StrCat("no flag has the key `", key, "`"))
                               : ErrorResult(key, posthog::v1::FLAG_ERROR_CODE_GENERAL,
                                             absl::StrCat("cannot be decided locally: ", why)));
    }
  }
  if (request_id.empty()) request_id = NewUuid();

  if (options.send_flag_called_events() && flag_project.flag_called != nullptr) {
    flags::FlagCalledCall call_facts;
    call_facts.distinct_id = context.distinct_id;
    call_facts.groups = context.groups;
    call_facts.now = now;
    call_facts.evaluated_at_ms = asked_remote && remote.evaluated_at_ms != 0
                                     ? remote.evaluated_at_ms
                                     : absl::ToUnixMillis(now);
    call_facts.request_id = request_id;
    call_facts.quota_limited = remote.quota_limited;
    for (size_t i = 0; i < results.size(); ++i) {
      FlagResults::Summary summary = results.Summarize(i);
      flags::FlagCalledResult result;
      result.key = results.key(i);
      result.local = summary.local;
      result.enabled = summary.enabled;
      result.variant = std::string(summary.variant);
      result.payload = std::move(summary.payload);
      result.reason_description = std::move(summary.reason_description);
      result.flag_id = summary.flag_id;
      result.flag_version = summary.flag_version;
      result.error_code = summary.error_code;
      if (!flags::FlagCalledDue(call_facts, result, flag_called_seen_)) continue;
      if (result.local && definitions != nullptr) {
        if (const flags::CompiledFlag* flag = definitions->Find(result.key)) {
          result.has_experiment = flags::CompiledDefinitions::HasExperiment(*flag);
        }
      } else if (auto it = remote.flags.find(result.key); it != remote.flags.end()) {
        result.has_experiment = it->second.has_experiment;
      }
      flag_project.flag_called->Record(flags::FlagCalledEvent(call_facts, result, NewUuid()));
    }
  }
  e.request_id = std::move(request_id);
}

template <typename Finish>
void FlagServiceImpl::EvaluateAndFinish(std::function<CallContext()> call_context,
                                        const std::string& project,
                                        const std::vector<std::string>& keys,
                                        const posthog::v1::EvaluationContext& who,
                                        const posthog::v1::EvaluationOptions& options,
                                        Finish finish) {
  absl::StatusOr<std::unique_ptr<Evaluation>> evaluation =
      EvaluateLocally(project, keys, who, options);
  if (!evaluation.ok()) {
    finish(evaluation.status());
    return;
  }
  if (!(*evaluation)->NeedsPostHog()) {
    Complete(**evaluation, CallContext());
    finish(evaluation->get());
    return;
  }
  // The context lives until the call finishes.
  Evaluation* waiting = evaluation->get();
  absl::AnyInvocable<void()&&> complete = [this, call_context = std::move(call_context),
                                           evaluation = *std::move(evaluation),
                                           finish = std::move(finish)]() mutable {
    Complete(*evaluation, call_context());
    finish(evaluation.get());
  };
  if (!remote_evaluations_.TryStart(complete)) {
    waiting->posthog_busy = true;  // Complete answers at once, without PostHog.
    std::move(complete)();
  }
}

void FlagServiceImpl::Evaluate(std::function<CallContext()> call_context,
                               const std::string& project, const std::vector<std::string>& keys,
                               const posthog::v1::EvaluationContext& who,
                               const posthog::v1::EvaluationOptions& options, EvaluateDone finish) {
  EvaluateAndFinish(std::move(call_context), project, keys, who, options,
                    [finish = std::move(finish)](absl::StatusOr<const Evaluation*> done) mutable {
                      if (!done.ok()) {
                        std::move(finish)(done.status());
                      } else {
                        std::move(finish)(&(*done)->results);
                      }
                    });
}

grpc::ServerUnaryReactor* FlagServiceImpl::EvaluateFlag(
    grpc::CallbackServerContext* context, const posthog::v1::EvaluateFlagRequest* request,
    posthog::v1::EvaluateFlagResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/EvaluateFlag", request->project());
      !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  if (request->key().empty()) {
    reactor->Finish(ToGrpcStatus(
        InvalidArgumentWithViolations("a flag key is required", {{"key", "must not be empty"}})));
    return reactor;
  }
  // The request and the response live until the call finishes.
  EvaluateAndFinish([context] { return CallContextFromServer(context); }, request->project(),
                    {request->key()}, request->context(), request->options(),
                    [reactor, request, response](absl::StatusOr<const Evaluation*> done) {
                      if (!done.ok()) {
                        reactor->Finish(ToGrpcStatus(done.status()));
                        return;
                      }
                      const FlagResults& results = (*done)->results;
                      for (size_t i = 0; i < results.size(); ++i) {
                        if (results.key(i) == request->key()) {
                          *response->mutable_result() = results.ToProto(i);
                        }
                      }
                      response->set_request_id((*done)->request_id);
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerUnaryReactor* FlagServiceImpl::EvaluateFlags(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_bytes,
                                                         grpc::ByteBuffer* response_bytes) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto request = std::make_unique<ArenaMessage<posthog::v1::EvaluateFlagsRequest>>();
  if (!request->ParseFrom(*request_bytes)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "the request is not a posthog.v1.EvaluateFlagsRequest"));
    return reactor;
  }
  const posthog::v1::EvaluateFlagsRequest& r = **request;
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/EvaluateFlags", r.project());
      !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  if (absl::Status limit =
          CheckCountLimit("EvaluateFlags", "keys", r.keys_size(), kMaxEvaluateFlagsKeys);
      !limit.ok()) {
    reactor->Finish(ToGrpcStatus(limit));
    return reactor;
  }
  const std::vector<std::string> keys(r.keys().begin(), r.keys().end());
  EvaluateAndFinish([context] { return CallContextFromServer(context); }, r.project(), keys,
                    r.context(), r.options(),
                    [reactor, response_bytes,
                     request = std::move(request)](absl::StatusOr<const Evaluation*> done) {
                      if (!done.ok()) {
                        reactor->Finish(ToGrpcStatus(done.status()));
                        return;
                      }
                      // Written straight into the slice gRPC sends (one
                      // allocation holds the bytes and their reference
                      // count; gRPC frees it once sent), and swapped into
                      // the response: assigning a ByteBuffer copies it.
                      grpc::Slice slice;
                      const size_t written = (*done)->results.EncodeResponseInto(
                          (*done)->request_id, [&slice](size_t size) {
                            slice = grpc::Slice(size);
                            return reinterpret_cast<char*>(const_cast<uint8_t*>(slice.begin()));
                          });
                      if (written < slice.size()) slice = slice.sub(0, written);
                      grpc::ByteBuffer reply(&slice, 1);
                      response_bytes->Swap(&reply);
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* FlagServiceImpl::WatchFlagDefinitions(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes) {
  posthog::v1::WatchFlagDefinitionsRequest request;
  grpc::ByteBuffer bytes(*request_bytes);  // Shares the slices; Deserialize consumes it.
  if (!grpc::SerializationTraits<posthog::v1::WatchFlagDefinitionsRequest>::Deserialize(&bytes,
                                                                                        &request)
           .ok()) {
    return DefinitionsWatch::Refuse(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "the request is not a posthog.v1.WatchFlagDefinitionsRequest"));
  }
  if (grpc::Status denied = authorizer_->Check(
          *context, "/posthog.v1.FlagService/WatchFlagDefinitions", request.project());
      !denied.ok()) {
    return DefinitionsWatch::Refuse(denied);
  }
  absl::StatusOr<StreamLimits::Slot> slot = streams_->Open(
      authorizer_->CallerName(*context), "/posthog.v1.FlagService/WatchFlagDefinitions");
  if (!slot.ok()) return DefinitionsWatch::Refuse(ToGrpcStatus(slot.status()));
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request.project());
  if (!client.ok()) return DefinitionsWatch::Refuse(ToGrpcStatus(client.status()));
  auto found = watches_.find((*client)->project().alias);
  if (found == watches_.end()) {
    return DefinitionsWatch::Refuse(ToGrpcStatus(
        absl::FailedPreconditionError("feature flags are not set up for this project")));
  }
  return found->second->Open(*std::move(slot));
}

grpc::Status FlagServiceImpl::ListFlags(
    grpc::ServerContext* context, const posthog::v1::ListFlagsRequest* request,
    grpc::ServerWriter<posthog::v1::ListFlagsResponse>* writer) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/ListFlags", request->project());
      !denied.ok()) {
    return denied;
  }
  // Held until the stream ends.
  absl::StatusOr<StreamLimits::Slot> slot =
      streams_->Open(authorizer_->CallerName(*context), "/posthog.v1.FlagService/ListFlags");
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  absl::Status bounds = CheckListBounds("ListFlags", request->page_size(), request->limit());
  if (!bounds.ok()) return ToGrpcStatus(bounds);

  ListCall call;
  call.client = *client;
  call.path = flags::FeatureFlagsPath(**client);
  // No filters: the list is every live flag of the project.
  call.scope = ListScope("flags", **client, "");
  call.page_size = request->page_size();
  call.limit = request->limit();
  call.resume_token = request->resume_token();
  call.look_ahead = paging_.look_ahead;
  call.item_name = "flag";
  ListEnv env;
  env.pacer = pacers_.For((*client)->project().alias);
  env.tokens = tokens_;
  env.clock = clock_;
  env.context = CallContextFromServer(context);
  env.fetch_pool = fetch_pool_;
  return StreamList<posthog::v1::ListFlagsResponse, posthog::v1::Flag>(
      std::move(call), std::move(env), flags::FlagFromJson,
      [](posthog::v1::ListFlagsResponse& response) { return response.add_flags(); }, writer);
}

grpc::Status FlagServiceImpl::GetFlag(grpc::ServerContext* context,
                                      const posthog::v1::GetFlagRequest* request,
                                      posthog::v1::GetFlagResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/GetFlag", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  if (request->id() <= 0) {
    return ToGrpcStatus(
        InvalidArgumentWithViolations("a flag id is required", {{"id", "must be positive"}}));
  }
  absl::StatusOr<posthog::v1::Flag> flag =
      RestApi(*client).GetFlag(request->id(), CallContextFromServer(context));
  if (!flag.ok()) return ToGrpcStatus(flag.status());
  *response->mutable_flag() = *std::move(flag);
  return grpc::Status::OK;
}

grpc::Status FlagServiceImpl::CreateFlag(grpc::ServerContext* context,
                                         const posthog::v1::CreateFlagRequest* request,
                                         posthog::v1::CreateFlagResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/CreateFlag", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  if (request->flag().key().empty()) {
    return ToGrpcStatus(InvalidArgumentWithViolations("a flag key is required",
                                                      {{"flag.key", "must not be empty"}}));
  }
  absl::StatusOr<posthog::v1::Flag> flag =
      RestApi(*client).CreateFlag(request->flag(), CallContextFromServer(context));
  if (!flag.ok()) return ToGrpcStatus(flag.status());
  *response->mutable_flag() = *std::move(flag);
  return grpc::Status::OK;
}

grpc::Status FlagServiceImpl::UpdateFlag(grpc::ServerContext* context,
                                         const posthog::v1::UpdateFlagRequest* request,
                                         posthog::v1::UpdateFlagResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/UpdateFlag", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  if (request->flag().id() <= 0) {
    return ToGrpcStatus(
        InvalidArgumentWithViolations("a flag id is required", {{"flag.id", "must be positive"}}));
  }
  // A path names a writable field of PostHog's flag: one the Flag message
  // carries, or one the caller put in `extra`. Anything else is refused
  // rather than silently ignored.
  static constexpr absl::string_view kWritablePaths[] = {
      "key", "name", "active", "deleted", "ensure_experience_continuity", "tags", "filters"};
  std::vector<std::string> mask;
  std::vector<FieldViolation> bad_paths;
  for (int i = 0; i < request->update_mask().paths_size(); ++i) {
    const std::string& path = request->update_mask().paths(i);
    const bool known =
        absl::c_linear_search(kWritablePaths, path) ||
        (request->flag().has_extra() && request->flag().extra().fields().contains(path));
    if (!known) {
      bad_paths.push_back({absl::StrCat("update_mask.paths[", i, "]"),
                           absl::StrCat("\"", absl::CHexEscape(path.substr(0, 64)),
                                        "\" is not a writable flag field")});
    }
    mask.push_back(path);
  }
  if (!bad_paths.empty()) {
    return ToGrpcStatus(
        InvalidArgumentWithViolations("UpdateFlag: unknown update_mask path", bad_paths));
  }
  absl::StatusOr<posthog::v1::Flag> flag =
      RestApi(*client).UpdateFlag(request->flag(), mask, CallContextFromServer(context));
  if (!flag.ok()) return ToGrpcStatus(flag.status());
  *response->mutable_flag() = *std::move(flag);
  return grpc::Status::OK;
}

grpc::Status FlagServiceImpl::DeleteFlag(grpc::ServerContext* context,
                                         const posthog::v1::DeleteFlagRequest* request,
                                         posthog::v1::DeleteFlagResponse* response) {
  if (grpc::Status denied =
          authorizer_->Check(*context, "/posthog.v1.FlagService/DeleteFlag", request->project());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(request->project());
  if (!client.ok()) return ToGrpcStatus(client.status());
  if (request->id() <= 0) {
    return ToGrpcStatus(
        InvalidArgumentWithViolations("a flag id is required", {{"id", "must be positive"}}));
  }
  absl::Status deleted = RestApi(*client).DeleteFlag(request->id(), CallContextFromServer(context));
  return ToGrpcStatus(deleted);
}

}  // namespace posthog_gateway
