#ifndef SERVER_FLAGS_FLAG_CALLED_H_
#define SERVER_FLAGS_FLAG_CALLED_H_

// `$feature_flag_called` events: where they go (FlagCalledSink) and the
// bounded deduplication PostHog's SDKs apply before sending them.

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "posthog/v1/capture.pb.h"

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

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_FLAG_CALLED_H_
