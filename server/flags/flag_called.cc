#include "server/flags/flag_called.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace posthog_gateway::flags {

using nlohmann::json;

BatchFlagCalledSink::BatchFlagCalledSink(const PostHogClient* client,
                                         absl::Duration flush_interval, size_t max_batch,
                                         size_t max_queue)
    : client_(client),
      flush_interval_(flush_interval),
      max_batch_(max_batch),
      max_queue_(max_queue) {
  flusher_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || queue_.size() >= max_batch_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), flush_interval_);
        if (stopping_ && queue_.empty()) return;
      }
      Flush();
      absl::MutexLock lock(&mu_);
      if (stopping_ && queue_.empty()) return;
    }
  });
}

BatchFlagCalledSink::~BatchFlagCalledSink() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  flusher_.join();
}

void BatchFlagCalledSink::Record(json event) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= max_queue_) queue_.pop_front();
  queue_.push_back(std::move(event));
}

void BatchFlagCalledSink::Flush() {
  json batch = json::array();
  {
    absl::MutexLock lock(&mu_);
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (batch.empty()) return;
  absl::StatusOr<Secret> token = client_->Key(KeyKind::kProjectApiKey);
  if (!token.ok()) return;
  PostHogRequest request;
  request.method = "POST";
  request.host = PostHogHost::kIngestion;
  request.path = "/batch/";
  request.headers = {{"Content-Type", "application/json"}};
  request.body = json{{"api_key", token->value()}, {"batch", std::move(batch)}}.dump();
  CallContext context;
  context.deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<json> answer = client_->CallJson(request, context);
  if (!answer.ok()) {
    LogWarning("dropped $feature_flag_called events",
               {{"project", client_->project().alias},
                {"error", std::string(answer.status().message())}});
  }
}

bool FlagCalledDeduplicator::FirstTime(absl::string_view distinct_id, absl::string_view flag_key,
                                       absl::string_view value,
                                       const std::map<std::string, std::string>& groups) {
  // Length-prefixed parts: no separator can make two tuples collide.
  std::string key = absl::StrCat(distinct_id.size(), ":", distinct_id, flag_key.size(), ":",
                                 flag_key, value.size(), ":", value);
  for (const auto& [type, group_key] : groups) {  // std::map: sorted.
    absl::StrAppend(&key, type.size(), ":", type, group_key.size(), ":", group_key);
  }
  absl::MutexLock lock(&mu_);
  if (!seen_.insert(key).second) return false;
  order_.push_back(std::move(key));
  while (order_.size() > capacity_) {
    seen_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

}  // namespace posthog_gateway::flags
