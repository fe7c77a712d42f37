#include "server/config/key_store.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

std::optional<std::string> ReadProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace

absl::string_view KeyKindName(KeyKind kind) {
  switch (kind) {
    case KeyKind::kProjectApiKey:
      return "project_api_key";
    case KeyKind::kPersonalApiKey:
      return "personal_api_key";
    case KeyKind::kFeatureFlagsSecureKey:
      return "feature_flags_secure_key";
  }
  return "unknown_key";
}

KeyStore::KeyStore(const GatewayConfig& config, EnvReader env)
    : env_(env ? std::move(env) : EnvReader(ReadProcessEnv)) {
  absl::MutexLock lock(&mu_);
  for (const ProjectConfig& project : config.projects) {
    const std::pair<KeyKind, const KeySource*> sources[] = {
        {KeyKind::kProjectApiKey, &project.project_api_key},
        {KeyKind::kPersonalApiKey, &project.personal_api_key},
        {KeyKind::kFeatureFlagsSecureKey, &project.feature_flags_secure_key},
    };
    for (const auto& [kind, source] : sources) {
      if (!source->configured()) continue;
      Entry& entry = entries_[{project.alias, kind}];
      entry.source = *source;
      Load(entry);
    }
  }
}

bool KeyStore::Load(Entry& entry) {
  std::string value;
  std::string error;
  if (!entry.source.file.empty()) {
    std::ifstream file(entry.source.file);
    std::stringstream text;
    if (file) text << file.rdbuf();
    if (!file) {
      error = absl::StrCat("cannot read ", entry.source.Describe());
    } else {
      value = std::string(absl::StripAsciiWhitespace(text.str()));
      if (value.empty()) error = absl::StrCat(entry.source.Describe(), " is empty");
    }
  } else {
    std::optional<std::string> env_value = env_(entry.source.env);
    if (env_value.has_value()) value = std::string(absl::StripAsciiWhitespace(*env_value));
    if (value.empty()) error = absl::StrCat(entry.source.Describe(), " is unset or empty");
  }
  if (!error.empty()) {
    if (error != entry.load_error) {
      LogWarning(
          entry.secret.empty() ? "key not loaded" : "key reload failed; keeping the previous key",
          {{"reason", error}});
    }
    entry.load_error = std::move(error);
    return false;
  }
  entry.load_error.clear();
  if (value == entry.secret.value()) return false;
  const bool rotated = !entry.secret.empty();
  entry.secret = Secret(std::move(value));
  ++generation_;
  LogInfo(rotated ? "key rotated" : "key loaded", {{"source", entry.source.Describe()}});
  return true;
}

absl::StatusOr<Secret> KeyStore::Get(absl::string_view alias, KeyKind kind) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find({std::string(alias), kind});
  if (it == entries_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "project \"", alias, "\" has no ", KeyKindName(kind), " configured in the gateway"));
  }
  if (it->second.secret.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the gateway could not load the ",
                                                      KeyKindName(kind), " of project \"", alias,
                                                      "\": ", it->second.load_error));
  }
  return it->second.secret;
}

bool KeyStore::Reload() {
  absl::MutexLock lock(&mu_);
  bool changed = false;
  for (auto& [key, entry] : entries_) {
    if (entry.source.file.empty() && !entry.secret.empty()) continue;
    changed |= Load(entry);
  }
  return changed;
}

bool KeyStore::AllLoaded() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, entry] : entries_) {
    if (entry.secret.empty()) return false;
  }
  return true;
}

uint64_t KeyStore::Generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

}  // namespace posthog_gateway
