#ifndef SERVER_CAPTURE_CAPTURE_PIPELINE_H_
#define SERVER_CAPTURE_CAPTURE_PIPELINE_H_

// CapturePipeline is the capture domain: it validates and builds events
// (EventBuilder), writes them to the durable Spool, and hands them to the
// ProjectQueue of their project, which delivers them to PostHog. On creation
// it replays the spool, so events acknowledged before a crash or restart are
// delivered.
//
// Acknowledgement: ACK_MODE_DURABLE (the default) returns once the events are
// synced to disk; ACK_MODE_DELIVERED once PostHog accepted every one of them
// (or the deadline passed: DEADLINE_EXCEEDED, the events stay spooled).
//
// Thread-safe. Borrows the registry and key store, which must outlive it.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "posthog/v1/capture.pb.h"
#include "server/capture/delivery.h"
#include "server/capture/event_builder.h"
#include "server/capture/spool.h"
#include "server/config/config.h"
#include "server/config/key_store.h"
#include "server/posthog/project_registry.h"

namespace posthog_gateway {

class CapturePipeline final {
 public:
  // Create opens (and replays) the spool in `config.capture.spool_dir` and
  // starts one delivery queue per configured project. `env` (the clock of
  // timestamps and delivery, randomness) is for tests.
  static absl::StatusOr<std::unique_ptr<CapturePipeline>> Create(const GatewayConfig& config,
                                                                 const ProjectRegistry* projects,
                                                                 const KeyStore* keys,
                                                                 absl::string_view lib_version,
                                                                 DeliveryEnv env = {});

  // Stops delivery; what is not delivered stays spooled.
  ~CapturePipeline();

  CapturePipeline(const CapturePipeline&) = delete;
  CapturePipeline& operator=(const CapturePipeline&) = delete;

  // Capture takes `events` for `project` (an alias; empty for the default)
  // and returns their uuids in order. Violations name `<field>[i].<name>`
  // (`<field>.<name>` when not `indexed`). Errors: INVALID_ARGUMENT (bad
  // event or project), RESOURCE_EXHAUSTED with RetryInfo (spool full),
  // UNAVAILABLE (disk failure or stopping), DEADLINE_EXCEEDED or CANCELLED
  // (DELIVERED mode only: the deadline passed, or `is_cancelled` said the
  // caller left, noticed within 50 ms; the events stay spooled), and in
  // DELIVERED mode INVALID_ARGUMENT when PostHog refused one.
  absl::StatusOr<std::vector<std::string>> Capture(
      absl::string_view project, const std::vector<const posthog::v1::Event*>& events,
      absl::string_view field, bool indexed, posthog::v1::AckMode ack_mode, absl::Time deadline,
      const std::function<bool()>& is_cancelled = nullptr);

  // CaptureDone receives what Capture would return. Move-only (as CountDone):
  // called once.
  using CaptureDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)>;

  // CaptureDurableAsync is Capture in ACK_MODE_DURABLE without a thread
  // waiting for the sync: `done` runs on the spool's writer thread once the
  // events are synced (it must be quick), or on the caller's thread when
  // they are refused before that.
  void CaptureDurableAsync(absl::string_view project,
                           const std::vector<const posthog::v1::Event*>& events,
                           absl::string_view field, bool indexed, CaptureDone done);

  // CountDone receives how many events were stored, or why none were.
  using CountDone = absl::AnyInvocable<void(absl::StatusOr<int64_t>)>;

  // CaptureDurableCountAsync is CaptureDurableAsync for a caller that answers
  // with a count only (a stream's acknowledgement): the events' uuids are
  // not collected and handed over, which for a stream message of hundreds of
  // events was one string moved, kept and freed per event.
  void CaptureDurableCountAsync(absl::string_view project,
                                const std::vector<const posthog::v1::Event*>& events,
                                absl::string_view field, bool indexed, CountDone done);

  // Events of one request built for their project's queue, not yet
  // spooled (PrepareWire).
  struct Prepared {
    const std::string* alias = nullptr;  // The project's; lives as the pipeline.
    ProjectQueue* queue = nullptr;
    // The events as the spool's records, written by the builder.
    std::shared_ptr<RecordBlock> block;
    // Their uuids, when prepared `with_uuids`.
    std::vector<std::string> uuids;
  };

  // PrepareWire builds `events`, each the wire bytes of one posthog.v1.Event,
  // for `project` with EventBuilder::BuildWireRecords (their uuids only
  // `with_uuids`), so that a request's events are written as JSON straight
  // from its bytes. Nothing observable happens: nullopt when the builder
  // declines them or the project does not resolve, and then the caller
  // parses the request and calls CaptureDurableAsync or
  // CaptureDurableCountAsync, which decides (and reports any error). Errors
  // are what those would report, so how the events' violations are named
  // (`event.x`, `events[i].x`) does not matter here.
  std::optional<Prepared> PrepareWire(absl::string_view project,
                                      const std::vector<absl::string_view>& events,
                                      bool with_uuids) const;

  // SpoolPreparedAsync finishes what CaptureDurableAsync does for events
  // prepared `with_uuids`: spools them, queues them for delivery, and calls
  // `done` with their uuids as it does.
  void SpoolPreparedAsync(Prepared prepared, CaptureDone done);

  // SpoolPreparedCountAsync is the same for CaptureDurableCountAsync.
  void SpoolPreparedCountAsync(Prepared prepared, CountDone done);

  // ProjectPaused is whether PostHog refused `alias`'s project key (sending
  // to it is paused until the key changes).
  bool ProjectPaused(absl::string_view alias) const;

  // PausedProjects lists the paused projects' aliases.
  std::vector<std::string> PausedProjects() const;

  // Replay facts, for logs and tests.
  int64_t replayed_records() const { return replayed_records_; }
  int64_t damaged_segments() const { return damaged_segments_; }
  int64_t dead_letters() const { return dead_letters_->count(); }
  // Dead letters dropped by the dead-letter file's rotation.
  int64_t dead_letters_lost() const { return dead_letters_->lost(); }
  int64_t spool_bytes() const { return spool_->bytes(); }
  // Whether the spool can take events (for readiness).
  bool spool_writable() const { return spool_->Writable(); }
  // Events in the spool that PostHog has not accepted yet.
  int64_t undelivered() const { return spool_->Outstanding(); }

  // WaitUntilDelivered waits until every spooled event is delivered (or
  // dead-lettered) or `deadline` passes, and returns how many are left.
  // Delivery goes on as usual meanwhile (at shutdown, so that the spool
  // leaves with its pod as empty as the time allows; for --drain_spool).
  int64_t WaitUntilDelivered(absl::Time deadline) const;

 private:
  CapturePipeline() = default;

  // The two above: builds and spools `events`, then queues them for delivery
  // and calls `done` with their count; moves their uuids into `uuids` first
  // when it is not null (it must live until `done`).
  void DurableAsync(absl::string_view project, const std::vector<const posthog::v1::Event*>& events,
                    absl::string_view field, bool indexed, std::vector<std::string>* uuids,
                    CountDone done);

  // CollectUuids wraps `done` in a CountDone that hands it the uuids
  // collected into `*uuids` (which lives until then).
  static CountDone CollectUuids(CaptureDone done, std::vector<std::string>** uuids);

  // The rest of DurableAsync once the events are built.
  void SpoolBuiltAsync(const std::string& alias, ProjectQueue* queue,
                       std::vector<BuiltEvent>& built, std::vector<std::string>* uuids,
                       CountDone done);
  // The rest once the events are encoded: spools `block`, then queues it for
  // delivery and calls `done` with its count.
  void SpoolBlockAsync(ProjectQueue* queue, std::shared_ptr<const RecordBlock> block,
                       CountDone done);

  const ProjectRegistry* projects_ = nullptr;
  std::unique_ptr<EventBuilder> builder_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<DeadLetterFile> dead_letters_;
  // Declared last: destroyed first, while the spool still exists.
  std::map<std::string, std::unique_ptr<ProjectQueue>, std::less<>> queues_;
  int64_t replayed_records_ = 0;
  int64_t damaged_segments_ = 0;
};

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_CAPTURE_PIPELINE_H_
