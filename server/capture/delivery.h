#ifndef SERVER_CAPTURE_DELIVERY_H_
#define SERVER_CAPTURE_DELIVERY_H_

// Delivery of spooled events to one PostHog project's `POST /batch/`.
//
// BatchSender delivers one batch, whatever it takes: retries with exponential
// backoff and jitter on transport errors, 404, 405, 408, 429 and 5xx (a
// longer Retry-After wins; a 404 or 405 means a misrouted host or proxy, an
// outage, never a bad event); a 413 splits the batch in halves; a 400 splits it until
// the refused events are alone, so the good ones are delivered and each bad
// one goes to the dead-letter file with PostHog's reason; a 401/403 (or a key
// that is not loaded) pauses the project until the KeyStore's generation
// changes. It returns only once every event of the batch is delivered or
// dead-lettered, or when stopping.
//
// ProjectQueue holds a project's events waiting for delivery and runs
// `max_in_flight` workers, each closing a batch on a count, a byte size or
// the flush interval and sending it with a BatchSender. Projects have queues
// and threads of their own, so a slow or failing project never delays
// another.
//
// Thread-safe. Time and randomness come from a DeliveryEnv (tests inject a
// fake clock and a sleeper that does not sleep).

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/capture/spool.h"
#include "server/common/clock.h"
#include "server/config/key_store.h"
#include "server/posthog/posthog_client.h"

namespace posthog_gateway {

struct DeliveryOptions {
  int64_t batch_max_events = 1000;
  int64_t batch_max_bytes = 5 << 20;
  absl::Duration flush_interval = absl::Milliseconds(200);
  int64_t max_in_flight = 4;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
  // Timeout of one POST.
  absl::Duration request_timeout = absl::Seconds(30);
  // Events (JSON bytes) a project keeps in memory; beyond it a backlog stays
  // on disk only and is read back from the spool as delivery catches up.
  int64_t max_queued_bytes = 64 << 20;
};

// DeliveryEnv is the clock and randomness of delivery.
struct DeliveryEnv {
  // Timestamps, deadlines and the waits between attempts (borrowed).
  Clock* clock = RealClock();
  // Uniform in [0, 1).
  std::function<double()> random;
  // Whether to stop: polled while waiting, and a wait it ends stops sending.
  // ProjectQueue sets its own (its destructor).
  std::function<bool()> stopping;
};

// BackoffDelay is the wait before retry `attempt` (0-based): half of
// min(max, initial * 2^attempt) plus a random part up to the other half, and
// never less than `retry_after`.
absl::Duration BackoffDelay(int attempt, absl::Duration initial, absl::Duration max, double random,
                            absl::Duration retry_after);

// Gzip compresses `data` in the gzip format (libdeflate, level 1). Thread-safe.
std::string Gzip(const std::string& data);

// DeadLetterFile appends refused events, one JSON line each:
// {"time", "project", "http_status", "reason", "event"}. The file is the
// owner's alone (0600, narrowed if it was wider). Before a line would take
// the file past `max_bytes`, the file is renamed to `<path>.1`, replacing an
// older one, so at most about twice `max_bytes` stay on disk: the records of
// the replaced file are lost, counted by lost() and logged as a warning.
// Thread-safe.
class DeadLetterFile final {
 public:
  DeadLetterFile(std::string path, int64_t max_bytes);
  void Write(absl::string_view project, int http_status, absl::string_view reason,
             absl::string_view event_json);
  // Records written since start.
  int64_t count() const;
  // Records dropped since start by rotations replacing `<path>.1`.
  int64_t lost() const;

 private:
  const std::string path_;
  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t lost_ ABSL_GUARDED_BY(mu_) = 0;
};

// One event waiting for delivery.
struct QueuedEvent {
  // The event's JSON, in `block`: the records of its append (or of a read
  // back from the spool), shared by their entries and freed with the last
  // one, so that an event's JSON is neither copied nor freed on its own on
  // the way (record_block.h).
  absl::string_view json;
  std::shared_ptr<const RecordBlock> block;
  bool historical_migration = false;
  SegmentId segment = 0;
  // Where its record starts in the segment (for Spool::Release).
  int64_t offset = 0;
  // Called once with OK (PostHog accepted it) or why it was dead-lettered;
  // may be empty.
  std::function<void(const absl::Status&)> on_done;
};

// QueueEntries makes the delivery queue's entries for `block`'s records,
// spooled at `location` (one Append, one Read).
std::vector<QueuedEvent> QueueEntries(const std::shared_ptr<const RecordBlock>& block,
                                      const SpoolLocation& location);

class BatchSender final {
 public:
  // Borrows everything.
  BatchSender(const PostHogClient* client, const KeyStore* keys, DeadLetterFile* dead_letters,
              DeliveryOptions options, DeliveryEnv env);

  // Send delivers `batch` (events of one historical_migration kind). Returns
  // for each event the outcome: OK, or the dead-letter reason; CANCELLED for
  // all that remain when stopping.
  std::vector<absl::Status> Send(const std::vector<const QueuedEvent*>& batch);

  // Paused is whether PostHog refused the project's key and sending waits for
  // a new key.
  bool paused() const { return paused_.load(); }

  // Requests delivered (HTTP 200) and attempts made, for tests and metrics.
  int64_t posts() const { return posts_.load(); }

 private:
  // Sends [begin, end) of `batch`, writing outcomes; returns false when
  // stopping.
  bool SendRange(const std::vector<const QueuedEvent*>& batch, size_t begin, size_t end,
                 std::vector<absl::Status>& outcomes);
  void DeadLetter(const QueuedEvent& event, int http_status, absl::string_view reason,
                  absl::Status& outcome);
  std::string Body(const std::vector<const QueuedEvent*>& batch, size_t begin, size_t end,
                   const Secret& key) const;
  // Waits for a key rotation; returns false when stopping.
  bool WaitForNewKey(absl::string_view why);

  const PostHogClient* client_;
  const KeyStore* keys_;
  DeadLetterFile* dead_letters_;
  const DeliveryOptions options_;
  DeliveryEnv env_;
  std::atomic<bool> paused_{false};
  std::atomic<int64_t> posts_{0};
};

class ProjectQueue final {
 public:
  // Starts the workers. Borrows everything; releases each delivered or
  // dead-lettered event's record in `spool`.
  ProjectQueue(const PostHogClient* client, const KeyStore* keys, Spool* spool,
               DeadLetterFile* dead_letters, DeliveryOptions options, DeliveryEnv env);
  // Stops the workers; events not delivered stay in the spool.
  ~ProjectQueue();

  ProjectQueue(const ProjectQueue&) = delete;
  ProjectQueue& operator=(const ProjectQueue&) = delete;

  // Enqueue queues the events of one spool Append at `location`. Events
  // without an on_done callback may be kept on disk only (read back later)
  // when the memory budget is used up.
  void Enqueue(std::vector<QueuedEvent> events, const SpoolLocation& location);
  // Enqueue queues `block`, the records of one spool Append at `location`,
  // with no callbacks: as the above, but their entries are made only when
  // they stay in memory.
  void Enqueue(std::shared_ptr<const RecordBlock> block, const SpoolLocation& location);
  // EnqueueReplayed queues events already in memory.
  void EnqueueReplayed(std::vector<QueuedEvent> events);
  // EnqueueOnDisk queues spooled records still on disk only (a run replayed
  // at start-up): they are read back when the queue gets to them.
  void EnqueueOnDisk(const SpoolLocation& location);

  bool paused() const { return sender_.paused(); }
  int64_t queued() const;

 private:
  void WorkerLoop();
  // Moves the oldest on-disk Append into memory.
  void LoadFromDisk() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends `events`, queued at `now`, to the queue in memory.
  void QueueLocked(std::vector<QueuedEvent> events, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends entries for `block`'s records, spooled at `location`.
  void QueueBlockLocked(const std::shared_ptr<const RecordBlock>& block,
                        const SpoolLocation& location, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the destructor started: ends the workers' waits.
  bool Stopping() const;

  Spool* spool_;
  const DeliveryOptions options_;
  DeliveryEnv env_;
  BatchSender sender_;
  mutable absl::Mutex mu_;
  std::deque<QueuedEvent> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Time> enqueue_times_ ABSL_GUARDED_BY(mu_);
  // Appends whose events are only on disk, oldest first.
  std::deque<SpoolLocation> on_disk_ ABSL_GUARDED_BY(mu_);
  int64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_DELIVERY_H_
