#ifndef SERVER_FLAGS_FLAG_CALLED_H_
#define SERVER_FLAGS_FLAG_CALLED_H_

// `$feature_flag_called` events: what one says (FlagCalledEvent, a pure
// function of a flag's result and its call), when one is due (FlagCalledDue:
// the bounded deduplication PostHog's SDKs apply before sending them), and
// where they go (FlagCalledSink).
//
// The service (service/flag_service.cc) evaluates, then for each result:
//   if (FlagCalledDue(call, result, seen)) sink->Record(FlagCalledEvent(call, result, NewUuid()));

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/capture.pb.h"
#include "posthog/v1/flag.pb.h"

namespace posthog_gateway::flags {

// FlagCalledSink receives finished `$feature_flag_called` events (name,
// distinct_id, properties, timestamp and uuid set). Record must not block on
// the disk or the network. Thread-safe in every implementation; the capture
// pipeline's (capture/flag_called_sink.h) is the one the gateway uses.
class FlagCalledSink {
 public:
  virtual ~FlagCalledSink() = default;
  virtual void Record(posthog::v1::Event event) = 0;
};

// FlagCalledDeduplicator says whether a (distinct_id, flag, value, groups)
// was seen before, remembering at most `capacity` of them (the oldest are
// forgotten first). Thread-safe.
class FlagCalledDeduplicator final {
 public:
  explicit FlagCalledDeduplicator(size_t capacity) : capacity_(capacity) {}

  // FirstTime returns true, and remembers the tuple, when it was not seen.
  bool FirstTime(absl::string_view distinct_id, absl::string_view flag_key, absl::string_view value,
                 const std::map<std::string, std::string>& groups);

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

// FlagCalledCall is what every event of one evaluation shares.
struct FlagCalledCall {
  std::string distinct_id;
  // Group type -> group key, as the caller sent them.
  std::map<std::string, std::string> groups;
  // The evaluation's time: the event's timestamp.
  absl::Time now;
  // `$feature_flag_evaluated_at`, in Unix milliseconds: PostHog's
  // `evaluatedAt` when it was asked and said, else `now`.
  int64_t evaluated_at_ms = 0;
  // PostHog's `requestId`, or one the gateway made up; reported for flags
  // PostHog decided only.
  std::string request_id;
  // PostHog said the project's flag quota is exceeded.
  bool quota_limited = false;
};

// FlagCalledResult is one flag's result, as the event reports it.
struct FlagCalledResult {
  std::string key;
  // Decided by the gateway from the definitions (else by PostHog, or not).
  bool local = false;
  bool enabled = false;
  // The variant's key; empty for a boolean flag.
  std::string variant;
  // The payload as JSON, or null when there is none.
  nlohmann::json payload;
  std::string reason_description;
  int64_t flag_id = 0;
  int64_t flag_version = 0;
  posthog::v1::FlagErrorCode error_code = posthog::v1::FLAG_ERROR_CODE_UNSPECIFIED;
  // Whether the flag is tied to an experiment, when known (from the
  // definition if decided locally, else from PostHog's answer).
  std::optional<bool> has_experiment;
};

// FlagCalledResponse is the flag's value as `$feature_flag_response` and
// `$feature/<key>` report it and as deduplication compares it: the variant
// when there is one, else the boolean.
nlohmann::json FlagCalledResponse(const FlagCalledResult& result);

// FlagCalledDue says whether `result` gets an event, as PostHog's SDKs decide:
// never for a flag that does not exist (FLAG_NOT_FOUND), else once per
// (distinct_id, key, response, groups) that `seen` remembers. A true answer
// is remembered in `seen`.
bool FlagCalledDue(const FlagCalledCall& call, const FlagCalledResult& result,
                   FlagCalledDeduplicator& seen);

// FlagCalledEvent is the `$feature_flag_called` event for `result`, with
// `uuid` as its uuid. Its properties are posthog-node's: `$feature_flag`,
// `$feature_flag_response`, `$feature/<key>`, `locally_evaluated`,
// `$feature_flag_evaluated_at`, and when they apply `$feature_flag_payload`,
// `$feature_flag_request_id` (PostHog decided), `$feature_flag_reason`,
// `$feature_flag_version`, `$feature_flag_id`, `$feature_flag_error`
// ("quota_limited" or "errors_while_computing_flags") and
// `$feature_flag_has_experiment`. The capture pipeline adds `$lib`,
// `$lib_version` and `$groups`. Pure: same inputs, same event.
posthog::v1::Event FlagCalledEvent(const FlagCalledCall& call, const FlagCalledResult& result,
                                   std::string uuid);

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_FLAG_CALLED_H_
