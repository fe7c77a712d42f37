#ifndef SERVER_AUTHZ_BEARER_TOKENS_H_
#define SERVER_AUTHZ_BEARER_TOKENS_H_

// BearerTokens names the calling service of an `authorization: Bearer <token>`
// header, from a file that holds only the SHA-256 of each token:
//
//   # <caller name> <sha256 of the token, 64 hex digits>
//   billing-batch 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// One line per token (a caller may have several, for rotation); blank lines
// and lines starting with `#` are ignored. Caller names are 1 to 128 of
// [A-Za-z0-9._-] (so that none can be mistaken for a SPIFFE URI or a
// certificate subject). Make a line with
//   printf %s "$TOKEN" | sha256sum
//
// The file is re-read by Reload (the way key files are, so that a rotated
// Kubernetes Secret needs no restart); a file that has become unreadable or
// malformed keeps the previous tokens and says why in LoadError. The
// presented token is hashed and compared with every stored hash in constant
// time (the time does not depend on which bytes match, nor on which line
// matched).
//
// Thread-safe: Identify may run on any thread while Reload runs.

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace posthog_gateway {

// The SHA-256 of `bytes`.
std::array<unsigned char, 32> Sha256(absl::string_view bytes);

class BearerTokens final {
 public:
  struct Entry {
    std::string caller;
    std::array<unsigned char, 32> hash;
  };

  // ParseTokenFile parses the file's text; INVALID_ARGUMENT naming the line
  // (never its hash) when one is malformed.
  static absl::StatusOr<std::vector<Entry>> Parse(absl::string_view text);

  // Reads `path` once; a file that cannot be read or parsed leaves the store
  // empty (every token refused) until a Reload succeeds.
  explicit BearerTokens(std::string path);

  BearerTokens(const BearerTokens&) = delete;
  BearerTokens& operator=(const BearerTokens&) = delete;

  // Reload re-reads the file; returns whether the tokens changed.
  bool Reload();

  // Identify returns the caller whose token is `token`, or UNAUTHENTICATED
  // (the message never holds the token).
  absl::StatusOr<std::string> Identify(absl::string_view token) const;

  // Why the last read failed; empty when it did not.
  std::string LoadError() const;
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const std::vector<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::string text_ ABSL_GUARDED_BY(mu_);  // What the entries were parsed from.
  std::string load_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_AUTHZ_BEARER_TOKENS_H_
