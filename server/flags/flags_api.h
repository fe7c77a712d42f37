#ifndef SERVER_FLAGS_FLAGS_API_H_
#define SERVER_FLAGS_FLAGS_API_H_

// FlagsApi is the typed PostHog client for feature flags: remote evaluation
// (`POST /flags?v=2` on the ingestion host, project key in the body) and the
// flag REST resource (`/api/projects/:id/feature_flags/`, personal key, app
// host). Stateless apart from the borrowed PostHogClient; thread-safe.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.pb.h"
#include "server/flags/evaluator.h"
#include "server/paging/request_pacer.h"
#include "server/posthog/posthog_client.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway::flags {

// One flag as PostHog's `/flags?v=2` decided it.
struct RemoteFlag {
  bool enabled = false;
  std::string variant;
  // PostHog's reason code string (`condition_match`, ..., or an error code).
  std::string reason_code;
  std::string reason_description;
  int condition_index = -1;
  int64_t id = 0;
  int64_t version = 0;
  // Parsed: PostHog sends a JSON string (parsed here) or raw JSON.
  nlohmann::json payload;
  bool failed = false;
  bool has_experiment = false;
};

// The whole `/flags?v=2` answer.
struct RemoteEvaluation {
  std::map<std::string, RemoteFlag> flags;
  std::string request_id;
  bool errors_while_computing = false;
  bool quota_limited = false;
  int64_t evaluated_at_ms = 0;
};

// ParseRemoteEvaluation maps a `/flags?v=2` body. INVALID_ARGUMENT when it
// has no `flags` object (and is not quota limited).
absl::StatusOr<RemoteEvaluation> ParseRemoteEvaluation(const nlohmann::json& body);

// FeatureFlagsUrl is the feature flag REST resource of the client's
// project on the app host (`/api/projects/:id/feature_flags/`); its GET is
// PostHog's flag list (DRF limit/offset pages, newest first, deleted flags
// left out). FeatureFlagsPath is its encoded path.
UpstreamUrl FeatureFlagsUrl(const PostHogClient& client);
std::string FeatureFlagsPath(const PostHogClient& client);

class FlagsApi final {
 public:
  // With a `pacer`, each REST request (not RemoteEvaluate: `/flags` is not
  // throttled) waits for its turn: PostHog throttles flag reads, writes and
  // lists under one per-key limit (docs/posthog-api.md §6.4).
  explicit FlagsApi(const PostHogClient* client, RequestPacer* pacer = nullptr)
      : client_(client), pacer_(pacer) {}

  // RemoteEvaluate asks PostHog for `keys` (every flag when empty), with
  // `geoip_disable` from the context or else the project's default.
  absl::StatusOr<RemoteEvaluation> RemoteEvaluate(const EvaluationContext& context,
                                                  const std::vector<std::string>& keys,
                                                  const CallContext& call) const;

  // Flag ids must be positive and flag keys PostHog's syntax
  // (ValidatePositiveId, ValidateFlagKey): INVALID_ARGUMENT naming `id`,
  // `flag.id` or `flag.key` otherwise, before any request.
  absl::StatusOr<posthog::v1::Flag> GetFlag(int64_t id, const CallContext& call) const;
  // CreateFlag sends the flag without id, version and times.
  absl::StatusOr<posthog::v1::Flag> CreateFlag(const posthog::v1::Flag& flag,
                                               const CallContext& call) const;
  // UpdateFlag PATCHes the fields in `mask` (every writable field when
  // empty), with `version` when set: PostHog answers 409 (ABORTED) when the
  // flag moved on.
  absl::StatusOr<posthog::v1::Flag> UpdateFlag(const posthog::v1::Flag& flag,
                                               const std::vector<std::string>& mask,
                                               const CallContext& call) const;
  // DeleteFlag soft-deletes (PATCH deleted=true): PostHog refuses DELETE.
  absl::Status DeleteFlag(int64_t id, const CallContext& call) const;

 private:
  // The flag `id`'s resource (`.../feature_flags/{id}/`).
  absl::StatusOr<std::string> FlagPath(int64_t id, absl::string_view field) const;
  // One REST request, paced.
  absl::StatusOr<nlohmann::json> CallRest(const PostHogRequest& request,
                                          const CallContext& call) const;

  const PostHogClient* client_;
  RequestPacer* pacer_;
};

}  // namespace posthog_gateway::flags

#endif  // SERVER_FLAGS_FLAGS_API_H_
