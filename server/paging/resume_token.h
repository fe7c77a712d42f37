#ifndef SERVER_PAGING_RESUME_TOKEN_H_
#define SERVER_PAGING_RESUME_TOKEN_H_

// ResumeTokenCodec makes and checks the resume tokens of streamed lists.
//
// A token is `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`
// where the payload is a small JSON object: the fingerprint of the list's
// filters (a SHA-256 prefix of the caller-supplied scope, e.g. project and
// filters), the PostHog offset of the next item, the items streamed before
// it, and an expiry time; for a cursor-paginated list (groups) also
// PostHog's cursor of the page to fetch, the items of that page to skip and a
// digest identifying the last item streamed. Tokens are opaque to callers, tamper-evident (any
// change breaks the MAC) and carry nothing secret: no key, no filter values.
//
// The secret comes from the configuration; when none is configured it is
// random per process, so a token only resumes on the replica that made it.
// Replicas behind one load balancer need a shared secret.
//
// Immutable after construction, so thread-safe.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace posthog_gateway {

// Where a resumed list continues.
struct ResumePosition {
  // PostHog offset of the next item to stream.
  int64_t offset = 0;
  // Items streamed before it, across every call of the list.
  int64_t items_streamed = 0;
  // Cursor lists: PostHog's cursor of the page to fetch ("" for the list's
  // first page), how many of its items were streamed, and the digest of the
  // last one (placing the position when items were inserted before it).
  // Absent for offset lists.
  std::optional<std::string> cursor;
  int64_t skip = 0;
  std::string after_id;
};

// ResumeDigest is a short digest (a SHA-256 prefix, base64url) of `text`: how
// a token names an item without carrying its data.
std::string ResumeDigest(absl::string_view text);

class ResumeTokenCodec final {
 public:
  // `secret` must not be empty; `ttl` is how long a token stays valid.
  ResumeTokenCodec(std::string secret, absl::Duration ttl);

  // WithRandomSecret returns a codec whose secret is 32 random bytes.
  static ResumeTokenCodec WithRandomSecret(absl::Duration ttl);

  // Encode makes the token resuming at `position` the list named by `scope`.
  std::string Encode(absl::string_view scope, const ResumePosition& position, absl::Time now) const;

  // Decode checks `token` and returns its position. INVALID_ARGUMENT when it
  // is malformed or forged, made for another scope (other filters or project),
  // or expired; the message says which.
  absl::StatusOr<ResumePosition> Decode(absl::string_view token, absl::string_view scope,
                                        absl::Time now) const;

 private:
  std::string Mac(absl::string_view payload) const;

  const std::string secret_;
  const absl::Duration ttl_;
};

}  // namespace posthog_gateway

#endif  // SERVER_PAGING_RESUME_TOKEN_H_
