#include "server/capture/flag_called_sink.h"

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

posthog::v1::Event Called(const std::string& distinct_id) {
  posthog::v1::Event event;
  event.set_event("$feature_flag_called");
  event.set_distinct_id(distinct_id);
  return event;
}

// Records what the sink hands to the pipeline, and answers with `answer`.
class FakePipeline {
 public:
  explicit FakePipeline(absl::Status answer = absl::OkStatus()) : answer_(std::move(answer)) {}

  CaptureFlagCalledSink::Capture AsCapture() {
    return [this](const std::vector<const posthog::v1::Event*>& events) {
      absl::MutexLock lock(&mu_);
      std::vector<std::string> batch;
      for (const posthog::v1::Event* event : events) batch.push_back(event->distinct_id());
      batches_.push_back(std::move(batch));
      return answer_;
    };
  }

  std::vector<std::vector<std::string>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  const absl::Status answer_;
  absl::Mutex mu_;
  std::vector<std::vector<std::string>> batches_ ABSL_GUARDED_BY(mu_);
};

CaptureFlagCalledSink::Options NeverOnTime(size_t max_batch, size_t max_queue) {
  CaptureFlagCalledSink::Options options;
  options.flush_interval = absl::Hours(1);  // Only size and destruction flush.
  options.max_batch = max_batch;
  options.max_queue = max_queue;
  return options;
}

TEST(CaptureFlagCalledSinkTest, HandsEventsToThePipelineInBatchesAndFlushesOnDestruction) {
  FakePipeline pipeline;
  {
    CaptureFlagCalledSink sink("default", pipeline.AsCapture(), NeverOnTime(2, 100));
    for (const char* id : {"a", "b", "c"}) sink.Record(Called(id));
  }
  const std::vector<std::vector<std::string>> batches = pipeline.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(batches[1], (std::vector<std::string>{"c"}));
}

TEST(CaptureFlagCalledSinkTest, FlushesOnTheIntervalWithoutWaitingForAFullBatch) {
  FakePipeline pipeline;
  CaptureFlagCalledSink::Options options = NeverOnTime(100, 100);
  options.flush_interval = absl::Milliseconds(5);
  CaptureFlagCalledSink sink("default", pipeline.AsCapture(), options);
  sink.Record(Called("a"));
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (pipeline.batches().empty() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(pipeline.batches().size(), 1u);
  EXPECT_EQ(pipeline.batches()[0], (std::vector<std::string>{"a"}));
}

TEST(CaptureFlagCalledSinkTest, DropsTheOldestBeyondTheQueueBoundAndCountsThem) {
  FakePipeline pipeline;
  int64_t dropped = 0;
  {
    // max_batch above max_queue: nothing flushes before destruction.
    CaptureFlagCalledSink sink("default", pipeline.AsCapture(), NeverOnTime(10, 2));
    for (const char* id : {"a", "b", "c"}) sink.Record(Called(id));
    dropped = sink.dropped();
  }
  EXPECT_EQ(dropped, 1);
  ASSERT_EQ(pipeline.batches().size(), 1u);
  EXPECT_EQ(pipeline.batches()[0], (std::vector<std::string>{"b", "c"}));
}

TEST(CaptureFlagCalledSinkTest, CountsEventsThePipelineRefuses) {
  FakePipeline pipeline(absl::ResourceExhaustedError("the spool is full"));
  CaptureFlagCalledSink sink("default", pipeline.AsCapture(), NeverOnTime(2, 100));
  sink.Record(Called("a"));
  sink.Record(Called("b"));  // A full batch: flushed now.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (sink.dropped() < 2 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(sink.dropped(), 2);
}

}  // namespace
}  // namespace posthog_gateway
