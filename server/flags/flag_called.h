#ifndef SERVER_FLAGS_FLAG_CALLED_H_
#define SERVER_FLAGS_FLAG_CALLED_H_

// `$feature_flag_called` events: where they go (FlagCalledSink) and the
// bounded deduplication PostHog's SDKs apply before sending them.

#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway::flags {

// FlagCalledSink receives finished `$feature_flag_called` events
// (`{"event", "distinct_id", "properties", "timestamp", "uuid"}`). Record
// must not block on the network. Thread-safe in every implementation.
//
// Deliberately minimal: the durable capture pipeline will implement it.
class FlagCalledSink {
 public:
  virtual ~FlagCalledSink() = default;
  virtual void Record(nlohmann::json event) = 0;
};

// BatchFlagCalledSink queues events and posts them to `/batch/` through the
// project's PostHogClient from a background thread, every `flush_interval`
// or at `max_batch` events. Best effort: a failed post is logged and
// dropped, and at most `max_queue` events wait (older ones are dropped).
// Flushes what is queued on destruction.
class BatchFlagCalledSink final : public FlagCalledSink {
 public:
  BatchFlagCalledSink(const PostHogClient* client, absl::Duration flush_interval,
                      size_t max_batch = 100, size_t max_queue = 10000);
  ~BatchFlagCalledSink() override;

  void Record(nlohmann::json event) override;

 private:
  void Flush();

  const PostHogClient* client_;
  const absl::Duration flush_interval_;
  const size_t max_batch_;
  const size_t max_queue_;
  absl::Mutex mu_;
  std::deque<nlohmann::json> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread flusher_;
};

// FlagCalledDeduplicator says whether a (distinct_id, flag, value, groups)
// was seen before, remembering at most `capacity` of them (the oldest are
// forgotten first). Thread-safe.
class FlagCalledDeduplicator final {
 public:
  explicit FlagCalledDeduplicator(size_t capacity) : capacity_(capacity) {}

  // FirstTime returns true, and remembers the tuple, when it was not seen.
  bool FirstTime(absl::string_view distinct_id, absl::string_view flag_key,
                 absl::string_view value, const std::map<std::string, std::string>& groups);

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_FLAG_CALLED_H_
