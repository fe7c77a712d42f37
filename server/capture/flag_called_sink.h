#ifndef SERVER_CAPTURE_FLAG_CALLED_SINK_H_
#define SERVER_CAPTURE_FLAG_CALLED_SINK_H_

// CaptureFlagCalledSink sends one project's `$feature_flag_called` events
// through the capture pipeline, so that they get what every captured event
// gets: validation, the durable spool, batching, retries and dead letters.
//
// Record only queues (an evaluation never waits for the disk): a background
// thread hands the queue to the pipeline every `flush_interval`, or sooner
// once `max_batch` events wait, as one durable capture (one group commit).
// At most `max_queue` events wait; past that the oldest are dropped and
// counted, as PostHog's SDKs drop theirs. A capture the pipeline refuses
// (spool full, stopping) is logged and counted, not retried: these events
// are analytics about evaluations, and an evaluation never fails for them.
// Hands what is queued to the pipeline on destruction.
//
// Thread-safe. `capture` must outlive the sink.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "posthog/v1/capture.pb.h"
#include "server/flags/flag_called.h"

namespace posthog_gateway {

class CaptureFlagCalledSink final : public flags::FlagCalledSink {
 public:
  // Capture takes a batch of events for the sink's project and returns once
  // they are durably queued (CapturePipeline::Capture in the gateway).
  using Capture = std::function<absl::Status(const std::vector<const posthog::v1::Event*>&)>;

  struct Options {
    absl::Duration flush_interval = absl::Seconds(1);
    size_t max_batch = 500;
    size_t max_queue = 10000;
  };

  CaptureFlagCalledSink(std::string project, Capture capture, Options options);
  ~CaptureFlagCalledSink() override;

  CaptureFlagCalledSink(const CaptureFlagCalledSink&) = delete;
  CaptureFlagCalledSink& operator=(const CaptureFlagCalledSink&) = delete;

  void Record(posthog::v1::Event event) override;

  // Events dropped so far: queue overflow or refused by the pipeline.
  int64_t dropped() const;

  const std::string& project() const { return project_; }

 private:
  // Flush hands up to max_batch queued events to the pipeline.
  void Flush();

  const std::string project_;
  const Capture capture_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<posthog::v1::Event> queue_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread flusher_;
};

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_FLAG_CALLED_SINK_H_
