#ifndef SERVER_CONFIG_KEY_STORE_H_
#define SERVER_CONFIG_KEY_STORE_H_

// KeyStore holds the PostHog keys of every configured project, read from the
// files or environment variables the configuration names, and picks up
// rotated key files without a restart.
//
// Thread-safe: Get may be called from any thread while Reload runs.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/config/config.h"

namespace posthog_gateway {

enum class KeyKind {
  kProjectApiKey,         // phc_...: capture, /flags.
  kPersonalApiKey,        // phx_...: everything under /api/.
  kFeatureFlagsSecureKey  // phs_...: /flags/definitions.
};

absl::string_view KeyKindName(KeyKind kind);

// Secret is a key value that does not print itself: streaming or formatting
// it yields "[redacted]" (gtest and logs print it that way). Only the HTTP request builder reads
// value().
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }
  bool operator==(const Secret& other) const { return value_ == other.value_; }

  friend std::ostream& operator<<(std::ostream& out, const Secret&) { return out << "[redacted]"; }

 private:
  std::string value_;
};

class KeyStore final {
 public:
  // Reads an environment variable; nullopt when unset. Tests inject one.
  using EnvReader = std::function<std::optional<std::string>(const std::string&)>;

  // Creates the store and loads every key once. Keys that cannot be loaded
  // are reported by Get and AllLoaded until a later Reload finds them.
  explicit KeyStore(const GatewayConfig& config, EnvReader env = nullptr);

  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // Get returns the current key of `kind` for the project `alias`, or
  // FAILED_PRECONDITION saying that the key is not configured or where it
  // could not be read (never the key itself).
  absl::StatusOr<Secret> Get(absl::string_view alias, KeyKind kind) const;

  // Reload re-reads every key file. A file that is unreadable or empty keeps
  // the previous key (Kubernetes swaps secret files atomically, but a broken
  // mount must not take a working key away). Environment variables are read
  // only at start-up. Returns whether any key changed.
  bool Reload();

  // AllLoaded is whether every configured key has a value.
  bool AllLoaded() const;

  // Generation increases each time a key changes, so that components that
  // stopped on a refused key (capture) can notice a rotation.
  uint64_t Generation() const;

 private:
  struct Entry {
    KeySource source;
    Secret secret;
    std::string load_error;  // Why the last load failed; empty when it did not.
  };
  using EntryKey = std::pair<std::string, KeyKind>;

  // Loads `entry` from its source; returns whether the key changed.
  bool Load(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EnvReader env_;
  mutable absl::Mutex mu_;
  std::map<EntryKey, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace posthog_gateway

#endif  // SERVER_CONFIG_KEY_STORE_H_
