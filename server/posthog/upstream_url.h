#ifndef SERVER_POSTHOG_UPSTREAM_URL_H_
#define SERVER_POSTHOG_UPSTREAM_URL_H_

// Every request target the gateway sends to PostHog (the path and query of a
// PostHogRequest) is built here, never by concatenating strings: the gateway
// holds a personal API key that may delete a project, so a caller's value
// must never be able to change which PostHog route a request reaches.
//
// The rules (docs/security.md, "Upstream requests"):
// - A path is a list of segments, each percent-encoded: only RFC 3986's
//   unreserved characters (A-Z a-z 0-9 - . _ ~) are kept, everything else is
//   %XX (upper-case hex), '/' '?' '#' '%' NUL CR LF included.
// - An empty segment and the dot segments "." and ".." are refused, so are
//   values that decode to them ("%2e%2e" is encoded to "%252e%252e", which
//   PostHog reads as the literal text).
// - Literal segments (the route's own words: "api", "persons", "@me") come
//   from the gateway's code; they may also hold '@'.
// - The query is a list of (name, value) pairs, each side encoded the same
//   way; a bare name (`send_cohorts`) is allowed.
// - Typed ids are validated before they are used (ValidatePersonUuid,
//   ValidatePositiveId, ValidateFlagKey, ValidateGroupTypeIndex,
//   ValidateGroupKey): a bad one is INVALID_ARGUMENT with
//   a google.rpc.BadRequest naming the request field.
//
// ParseUpstreamTarget is the inverse: it accepts only a target this builder
// could have produced, which PostHogClient::Send checks before anything is
// sent (so a concatenated target with a raw caller value is refused).
//
// Values of these types are plain data: not thread-safe to mutate from
// several threads, safe to share once built.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace posthog_gateway {

// PercentEncode keeps RFC 3986's unreserved characters and encodes every
// other byte as %XX (upper-case hex).
std::string PercentEncode(absl::string_view text);

class UpstreamUrl final {
 public:
  UpstreamUrl() = default;

  // Literal appends a segment of the route itself, written in the gateway's
  // code ("api", "projects", "@me"). Refused (at Build) unless it is made of
  // unreserved characters and '@' and is not a dot segment.
  UpstreamUrl& Literal(absl::string_view segment);

  // Segment appends a value (an id, a key) as one encoded segment. Refused
  // (at Build) when empty, "." or "..".
  UpstreamUrl& Segment(absl::string_view value);
  UpstreamUrl& Segment(int64_t value);

  // TrailingSlash ends the path with '/' (PostHog's REST routes do).
  UpstreamUrl& TrailingSlash();

  // Query appends `name=value`, both encoded; QueryFlag a bare `name`.
  UpstreamUrl& Query(absl::string_view name, absl::string_view value);
  UpstreamUrl& Query(absl::string_view name, int64_t value);
  UpstreamUrl& QueryFlag(absl::string_view name);

  // Path is the encoded path ("/api/projects/7/persons/"); Query the encoded
  // query without '?' ("distinct_id=a%20b&limit=1"), "" when there is none.
  // Meaningful only when status() is OK.
  std::string Path() const;
  std::string EncodedQuery() const;

  // status is OK, or INVALID_ARGUMENT naming the first refused part.
  const absl::Status& status() const { return status_; }

  // Build returns "path[?query]", or status() when a part was refused.
  absl::StatusOr<std::string> Build() const;

 private:
  friend absl::StatusOr<UpstreamUrl> ParseUpstreamTarget(absl::string_view target);

  void Refuse(absl::string_view why);

  // Encoded.
  std::vector<std::string> segments_;
  bool trailing_slash_ = false;
  // Encoded; a bare name has no value.
  std::vector<std::pair<std::string, std::optional<std::string>>> query_;
  absl::Status status_;
};

// ParseUpstreamTarget accepts only a canonical target (what UpstreamUrl
// builds): '/'-separated segments of unreserved characters, '@' and %XX
// (upper-case hex), none empty but a final one after a trailing slash, none
// decoding to "." or ".."; a query of `name[=value]` pairs of unreserved
// characters and %XX. INVALID_ARGUMENT otherwise. Its Build() returns
// `target` unchanged, and more query pairs may be appended to it.
absl::StatusOr<UpstreamUrl> ParseUpstreamTarget(absl::string_view target);

// Id validation, for the request fields that reach an upstream path. Each
// returns OK or INVALID_ARGUMENT with a BadRequest violation on `field`.

// A person's UUID: 8-4-4-4-12 hex digits (either case).
absl::Status ValidatePersonUuid(absl::string_view field, absl::string_view uuid);
bool IsUuid(absl::string_view text);

// A PostHog numeric id (person, flag, cohort, project): 1 to 2^63 - 1.
absl::Status ValidatePositiveId(absl::string_view field, int64_t id);

// A flag key as PostHog accepts it: `^[a-zA-Z0-9_-]+$`, at most
// kMaxFlagKeyLength bytes (docs/posthog-api.md §2.3; PostHog's column is 400).
inline constexpr size_t kMaxFlagKeyLength = 400;
absl::Status ValidateFlagKey(absl::string_view field, absl::string_view key);
bool IsFlagKey(absl::string_view key);

// A group type index: PostHog allows five group types per project, 0 to 4.
inline constexpr int64_t kMaxGroupTypeIndex = 4;
absl::Status ValidateGroupTypeIndex(absl::string_view field, int64_t index);

// A group key: any text of 1 to kMaxGroupKeyLength bytes without NUL (it
// only ever travels encoded in a query or a JSON body; PostHog's column is
// 400 characters).
inline constexpr size_t kMaxGroupKeyLength = 400;
absl::Status ValidateGroupKey(absl::string_view field, absl::string_view key);

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_UPSTREAM_URL_H_
