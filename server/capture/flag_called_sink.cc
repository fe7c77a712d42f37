#include "server/capture/flag_called_sink.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace posthog_gateway {

CaptureFlagCalledSink::CaptureFlagCalledSink(std::string project, Capture capture, Options options)
    : project_(std::move(project)), capture_(std::move(capture)), options_(options) {
  flusher_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || queue_.size() >= options_.max_batch;
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), options_.flush_interval);
      }
      Flush();
      absl::MutexLock lock(&mu_);
      if (stopping_ && queue_.empty()) return;
    }
  });
}

CaptureFlagCalledSink::~CaptureFlagCalledSink() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  flusher_.join();
}

void CaptureFlagCalledSink::Record(posthog::v1::Event event) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.max_queue) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(event));
}

int64_t CaptureFlagCalledSink::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void CaptureFlagCalledSink::Flush() {
  std::vector<posthog::v1::Event> batch;
  {
    absl::MutexLock lock(&mu_);
    while (!queue_.empty() && batch.size() < options_.max_batch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (batch.empty()) return;
  std::vector<const posthog::v1::Event*> events;
  events.reserve(batch.size());
  for (const posthog::v1::Event& event : batch) events.push_back(&event);
  const absl::Status status = capture_(events);
  if (status.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    dropped_ += static_cast<int64_t>(batch.size());
  }
  LogWarning("dropped $feature_flag_called events the capture pipeline refused",
             {{"project", project_},
              {"events", absl::StrCat(batch.size())},
              {"error", std::string(status.message())}});
}

}  // namespace posthog_gateway
