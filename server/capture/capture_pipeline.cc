#include "server/capture/capture_pipeline.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

// Collects the outcomes of the events of one DELIVERED-mode call.
struct DeliveryWaiter {
  absl::Mutex mu;
  int64_t remaining ABSL_GUARDED_BY(mu) = 0;
  absl::Status status ABSL_GUARDED_BY(mu);

  void Done(const absl::Status& outcome) {
    absl::MutexLock lock(&mu);
    if (status.ok() && !outcome.ok()) status = outcome;
    --remaining;
  }
};

// How often a DELIVERED-mode wait checks whether its caller left.
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(50);

uint64_t RandomBits() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

// EncodeBuilt encodes `built`'s events for `alias` as the spool's records,
// in one block (the JSON copied once, into the bytes the spool writes and
// delivery reads); moves their uuids into `uuids` when it is not null.
std::shared_ptr<const RecordBlock> EncodeBuilt(const std::string& alias,
                                               std::vector<BuiltEvent>& built,
                                               std::vector<std::string>* uuids) {
  auto block = std::make_shared<RecordBlock>();
  size_t bytes = 0;
  for (const BuiltEvent& event : built) bytes += RecordBlock::RecordBytes(alias, event.json);
  block->Reserve(bytes, built.size());
  if (uuids != nullptr) uuids->reserve(built.size());
  for (BuiltEvent& event : built) {
    block->Add(alias, event.historical_migration, event.json);
    if (uuids != nullptr) uuids->push_back(std::move(event.uuid));
  }
  return block;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CapturePipeline>> CapturePipeline::Create(
    const GatewayConfig& config, const ProjectRegistry* projects, const KeyStore* keys,
    absl::string_view lib_version, DeliveryEnv env) {
  const CaptureConfig& capture = config.capture;
  std::unique_ptr<CapturePipeline> pipeline(new CapturePipeline());
  pipeline->projects_ = projects;
  EventLimits limits;
  limits.max_event_bytes = capture.max_event_bytes;
  limits.max_properties_depth = capture.max_properties_depth;
  pipeline->builder_ =
      std::make_unique<EventBuilder>(limits, std::string(lib_version), env.clock, RandomBits);

  SpoolOptions spool_options;
  spool_options.dir = capture.spool_dir;
  spool_options.max_bytes = capture.max_spool_bytes;
  spool_options.segment_bytes = capture.segment_bytes;
  absl::StatusOr<Spool::Opened> opened = Spool::Open(spool_options);
  if (!opened.ok()) return opened.status();
  pipeline->spool_ = std::move(opened->spool);
  pipeline->dead_letters_ = std::make_unique<DeadLetterFile>(
      capture.spool_dir + "/dead-letter.jsonl", capture.dead_letter_max_bytes);
  pipeline->replayed_records_ = opened->replayed_records;
  pipeline->damaged_segments_ = opened->damaged_segments;

  DeliveryOptions delivery;
  delivery.batch_max_events = capture.batch_max_events;
  delivery.batch_max_bytes = capture.batch_max_bytes;
  delivery.flush_interval = capture.flush_interval;
  delivery.max_in_flight = capture.max_in_flight_batches;
  delivery.initial_backoff = capture.initial_backoff;
  delivery.max_backoff = capture.max_backoff;
  delivery.request_timeout = config.upstream.default_timeout;
  delivery.max_queued_bytes = capture.memory_queue_bytes;
  for (const ProjectConfig& project : config.projects) {
    absl::StatusOr<const PostHogClient*> client = projects->Resolve(project.alias);
    if (!client.ok()) return client.status();
    pipeline->queues_[project.alias] = std::make_unique<ProjectQueue>(
        *client, keys, pipeline->spool_.get(), pipeline->dead_letters_.get(), delivery, env);
  }

  // Replay: each run joins its project's queue as a backlog on disk, read
  // back as the queue drains, so memory stays bounded however full the
  // spool was.
  for (const ReplayedRun& run : opened->replayed) {
    auto queue = pipeline->queues_.find(run.project);
    if (queue != pipeline->queues_.end()) {
      queue->second->EnqueueOnDisk(run.location);
      continue;
    }
    absl::StatusOr<std::vector<SpoolRecord>> records = pipeline->spool_->Read(run.location);
    if (!records.ok()) return records.status();
    std::vector<RecordRef> dead;
    const std::vector<int64_t> offsets = Spool::RecordOffsets(run.location, *records);
    for (size_t i = 0; i < records->size(); ++i) {
      const SpoolRecord& record = (*records)[i];
      pipeline->dead_letters_->Write(record.project, 0, "the project is no longer configured",
                                     record.json);
      dead.push_back({run.location.segment, offsets[i]});
    }
    pipeline->spool_->Release(dead);
  }
  LogInfo("capture: spool opened", {{"dir", capture.spool_dir},
                                    {"replayed_records", absl::StrCat(pipeline->replayed_records_)},
                                    {"damaged_segments", absl::StrCat(opened->damaged_segments)},
                                    {"damaged_bytes", absl::StrCat(opened->damaged_bytes)}});
  return pipeline;
}

CapturePipeline::~CapturePipeline() { queues_.clear(); }

int64_t CapturePipeline::WaitUntilDelivered(absl::Time deadline) const {
  // Polled: releases come from every queue's workers, and a check costs a
  // lock and a walk over the segments (a handful), a few dozen times a second.
  while (true) {
    const int64_t left = spool_->Outstanding();
    if (left == 0 || absl::Now() >= deadline) return left;
    absl::SleepFor(std::min(absl::Milliseconds(20), deadline - absl::Now()));
  }
}

absl::StatusOr<std::vector<std::string>> CapturePipeline::Capture(
    absl::string_view project, const std::vector<const posthog::v1::Event*>& events,
    absl::string_view field, bool indexed, posthog::v1::AckMode ack_mode, absl::Time deadline,
    const std::function<bool()>& is_cancelled) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(project);
  if (!client.ok()) return client.status();
  const std::string& alias = (*client)->project().alias;
  auto queue = queues_.find(alias);
  if (queue == queues_.end()) return absl::InternalError("capture: project has no queue");

  absl::StatusOr<std::vector<BuiltEvent>> built =
      builder_->Build(events, field, indexed, (*client)->project().disable_geoip);
  if (!built.ok()) return built.status();

  std::vector<std::string> uuids;
  std::shared_ptr<const RecordBlock> block = EncodeBuilt(alias, *built, &uuids);
  absl::StatusOr<SpoolLocation> location = spool_->Append(block);
  if (!location.ok()) return location.status();

  const bool delivered_mode = ack_mode == posthog::v1::ACK_MODE_DELIVERED;
  if (!delivered_mode) {
    queue->second->Enqueue(std::move(block), *location);
    return uuids;
  }
  auto waiter = std::make_shared<DeliveryWaiter>();
  {
    absl::MutexLock lock(&waiter->mu);
    waiter->remaining = static_cast<int64_t>(block->size());
  }
  std::vector<QueuedEvent> queued = QueueEntries(block, *location);
  for (QueuedEvent& event : queued) {
    event.on_done = [waiter](const absl::Status& outcome) { waiter->Done(outcome); };
  }
  queue->second->Enqueue(std::move(queued), *location);

  absl::MutexLock lock(&waiter->mu);
  auto all_done = [w = waiter.get()]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->remaining == 0; };
  // The wait holds a thread: it ends with the deadline or as soon as the
  // caller leaves (nothing wakes it then but its own checks).
  while (!waiter->mu.AwaitWithDeadline(absl::Condition(&all_done),
                                       std::min(deadline, absl::Now() + kCancelPollInterval))) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          "PostHog has not accepted the events yet; they are spooled and will be delivered");
    }
    if (is_cancelled && is_cancelled()) {
      return absl::CancelledError(
          "the caller went away before PostHog accepted the events; they are spooled and "
          "will be delivered");
    }
  }
  if (!waiter->status.ok()) return waiter->status;
  return uuids;
}

CapturePipeline::CountDone CapturePipeline::CollectUuids(CaptureDone done,
                                                         std::vector<std::string>** uuids) {
  // What the call keeps until the sync, in one allocation; the callback
  // holds only its pointer (no shared_ptr, and small enough for
  // AnyInvocable's own storage).
  struct Collected {
    std::vector<std::string> uuids;
    CaptureDone done;
  };
  auto collected = std::make_unique<Collected>();
  collected->done = std::move(done);
  *uuids = &collected->uuids;
  return [collected = std::move(collected)](absl::StatusOr<int64_t> count) {
    if (!count.ok()) return collected->done(count.status());
    collected->done(std::move(collected->uuids));
  };
}

void CapturePipeline::CaptureDurableAsync(absl::string_view project,
                                          const std::vector<const posthog::v1::Event*>& events,
                                          absl::string_view field, bool indexed, CaptureDone done) {
  std::vector<std::string>* uuids = nullptr;
  CountDone counted = CollectUuids(std::move(done), &uuids);
  DurableAsync(project, events, field, indexed, uuids, std::move(counted));
}

void CapturePipeline::CaptureDurableCountAsync(absl::string_view project,
                                               const std::vector<const posthog::v1::Event*>& events,
                                               absl::string_view field, bool indexed,
                                               CountDone done) {
  DurableAsync(project, events, field, indexed, /*uuids=*/nullptr, std::move(done));
}

void CapturePipeline::DurableAsync(absl::string_view project,
                                   const std::vector<const posthog::v1::Event*>& events,
                                   absl::string_view field, bool indexed,
                                   std::vector<std::string>* uuids, CountDone done) {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(project);
  if (!client.ok()) return done(client.status());
  const std::string& alias = (*client)->project().alias;
  auto queue = queues_.find(alias);
  if (queue == queues_.end()) return done(absl::InternalError("capture: project has no queue"));

  absl::StatusOr<std::vector<BuiltEvent>> built =
      builder_->Build(events, field, indexed, (*client)->project().disable_geoip);
  if (!built.ok()) return done(built.status());
  SpoolBuiltAsync(alias, queue->second.get(), *built, uuids, std::move(done));
}

std::optional<CapturePipeline::Prepared> CapturePipeline::PrepareWire(
    absl::string_view project, const std::vector<absl::string_view>& events,
    bool with_uuids) const {
  absl::StatusOr<const PostHogClient*> client = projects_->Resolve(project);
  if (!client.ok()) return std::nullopt;
  const std::string& alias = (*client)->project().alias;
  auto queue = queues_.find(alias);
  if (queue == queues_.end()) return std::nullopt;
  Prepared prepared{&alias, queue->second.get(), std::make_shared<RecordBlock>(), {}};
  if (!builder_->BuildWireRecords(events, (*client)->project().disable_geoip, alias,
                                  prepared.block.get(), with_uuids ? &prepared.uuids : nullptr)) {
    return std::nullopt;
  }
  return prepared;
}

void CapturePipeline::SpoolPreparedAsync(Prepared prepared, CaptureDone done) {
  std::vector<std::string>* uuids = nullptr;
  CountDone counted = CollectUuids(std::move(done), &uuids);
  *uuids = std::move(prepared.uuids);
  SpoolBlockAsync(prepared.queue, std::move(prepared.block), std::move(counted));
}

void CapturePipeline::SpoolPreparedCountAsync(Prepared prepared, CountDone done) {
  SpoolBlockAsync(prepared.queue, std::move(prepared.block), std::move(done));
}

void CapturePipeline::SpoolBuiltAsync(const std::string& alias, ProjectQueue* project_queue,
                                      std::vector<BuiltEvent>& built,
                                      std::vector<std::string>* uuids, CountDone done) {
  SpoolBlockAsync(project_queue, EncodeBuilt(alias, built, uuids), std::move(done));
}

void CapturePipeline::SpoolBlockAsync(ProjectQueue* project_queue,
                                      std::shared_ptr<const RecordBlock> block, CountDone done) {
  // What waits for the sync, in one allocation the callback points to: the
  // records (the spool writes them, then they go on to the delivery queue)
  // and the callback.
  struct Spooling {
    std::shared_ptr<const RecordBlock> block;
    ProjectQueue* queue = nullptr;
    CountDone done;
  };
  auto spooling = std::make_unique<Spooling>();
  spooling->queue = project_queue;
  spooling->done = std::move(done);
  spooling->block = block;
  spool_->AppendAsync(std::move(block),
                      [spooling = std::move(spooling)](absl::StatusOr<SpoolLocation> location) {
                        if (!location.ok()) return spooling->done(location.status());
                        const int64_t count = static_cast<int64_t>(spooling->block->size());
                        spooling->queue->Enqueue(std::move(spooling->block), *location);
                        spooling->done(count);
                      });
}

bool CapturePipeline::ProjectPaused(absl::string_view alias) const {
  auto queue = queues_.find(alias);
  return queue != queues_.end() && queue->second->paused();
}

std::vector<std::string> CapturePipeline::PausedProjects() const {
  std::vector<std::string> paused;
  for (const auto& [alias, queue] : queues_) {
    if (queue->paused()) paused.push_back(alias);
  }
  return paused;
}

}  // namespace posthog_gateway
