#include "server/authz/bearer_tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

bool ValidCallerName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::array<unsigned char, 32> Sha256(absl::string_view bytes) {
  std::array<unsigned char, 32> digest;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return digest;
}

absl::StatusOr<std::vector<BearerTokens::Entry>> BearerTokens::Parse(absl::string_view text) {
  std::vector<Entry> entries;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2 || !ValidCallerName(fields[0]) || fields[1].size() != 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number,
          ": must be `<caller name> <sha256 hex of the token>`, the name of [A-Za-z0-9._-]"));
    }
    Entry entry;
    entry.caller = std::string(fields[0]);
    for (size_t i = 0; i < 32; ++i) {
      const int high = HexDigit(fields[1][2 * i]);
      const int low = HexDigit(fields[1][2 * i + 1]);
      if (high < 0 || low < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, ": the hash must be 64 hex digits"));
      }
      entry.hash[i] = static_cast<unsigned char>(high * 16 + low);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

BearerTokens::BearerTokens(std::string path)
    : path_(std::move(path)), entries_(std::make_shared<std::vector<Entry>>()) {
  Reload();
}

bool BearerTokens::Reload() {
  std::ifstream file(path_);
  std::stringstream text;
  if (file) text << file.rdbuf();
  absl::MutexLock lock(&mu_);
  if (!file) {
    load_error_ = absl::StrCat("cannot read ", path_);
    return false;
  }
  if (text.str() == text_ && load_error_.empty()) return false;
  absl::StatusOr<std::vector<Entry>> entries = Parse(text.str());
  if (!entries.ok()) {
    load_error_ = absl::StrCat(path_, ": ", entries.status().message());
    LogWarning("bearer token file not loaded; the previous tokens stay", {{"error", load_error_}});
    return false;
  }
  load_error_.clear();
  text_ = text.str();
  entries_ = std::make_shared<const std::vector<Entry>>(*std::move(entries));
  LogInfo("bearer token file loaded",
          {{"path", path_}, {"tokens", absl::StrCat(entries_->size())}});
  return true;
}

absl::StatusOr<std::string> BearerTokens::Identify(absl::string_view token) const {
  std::shared_ptr<const std::vector<Entry>> entries;
  {
    absl::MutexLock lock(&mu_);
    entries = entries_;
  }
  const std::array<unsigned char, 32> presented = Sha256(token);
  // Every entry is compared, whatever matched: the time depends on the
  // number of lines only.
  const Entry* match = nullptr;
  for (const Entry& entry : *entries) {
    const bool equal = CRYPTO_memcmp(entry.hash.data(), presented.data(), presented.size()) == 0;
    if (equal && match == nullptr) match = &entry;
  }
  if (token.empty() || match == nullptr) {
    return absl::UnauthenticatedError("the bearer token is not known");
  }
  return match->caller;
}

std::string BearerTokens::LoadError() const {
  absl::MutexLock lock(&mu_);
  return load_error_;
}

}  // namespace posthog_gateway
