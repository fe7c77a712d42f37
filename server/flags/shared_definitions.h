#ifndef SERVER_FLAGS_SHARED_DEFINITIONS_H_
#define SERVER_FLAGS_SHARED_DEFINITIONS_H_

// SharedDefinitions lets a fleet of replicas poll PostHog's flag definitions
// once per project per interval (Redis: server/fleet/fleet_coordinator.h): a
// lease picks the replica that polls; it stores what PostHog answered, and
// the others load it from there. DefinitionsStore polls on its own whenever
// a call here fails.
//
// Implementations are thread-safe and answer within a short deadline.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace posthog_gateway::flags {

// What the fleet knows of a project's definitions.
struct SharedState {
  // Changes with every stored body; 0 when none is stored.
  int64_t version = 0;
  // When the polling replica last had them confirmed by PostHog.
  absl::Time fetch_time = absl::InfinitePast();
};

// A stored copy: PostHog's body and ETag.
struct SharedCopy {
  SharedState state;
  std::string etag;
  std::string body;
};

class SharedDefinitions {
 public:
  virtual ~SharedDefinitions() = default;

  // HoldLease takes, or renews, this replica's lease to poll `project` and
  // says whether it holds it.
  virtual absl::StatusOr<bool> HoldLease(const std::string& project) = 0;

  // Store saves PostHog's answer (200) as `project`'s definitions and tells
  // every replica (OnChange).
  virtual absl::Status Store(const std::string& project, const std::string& etag,
                             const std::string& body) = 0;

  // Confirm records that PostHog confirmed the stored definitions (304).
  virtual absl::Status Confirm(const std::string& project) = 0;

  // Peek returns the stored state without the body.
  virtual absl::StatusOr<SharedState> Peek(const std::string& project) = 0;

  // Load returns the stored copy; nullopt when none is stored.
  virtual absl::StatusOr<std::optional<SharedCopy>> Load(const std::string& project) = 0;

  // OnChange calls `changed` (on another thread; it must be quick) whenever
  // a replica stores `project`'s definitions, and when the notifications
  // resume after an interruption. One callback per project.
  virtual void OnChange(const std::string& project, std::function<void()> changed) = 0;
};

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_SHARED_DEFINITIONS_H_
