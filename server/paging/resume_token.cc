#include "server/paging/resume_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"

namespace posthog_gateway {
namespace {

constexpr int kVersion = 1;

std::string Fingerprint(absl::string_view scope) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(scope.data()), scope.size(), digest);
  return absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(digest), 12));
}

absl::Status Invalid(absl::string_view why) {
  absl::Status status = InvalidArgumentWithViolations(absl::StrCat("invalid resume_token: ", why),
                                                      {{"resume_token", std::string(why)}});
  AttachErrorInfo(status, reasons::kInvalidResumeToken);
  return status;
}

}  // namespace

std::string ResumeDigest(absl::string_view text) { return Fingerprint(text); }

ResumeTokenCodec::ResumeTokenCodec(std::string secret, absl::Duration ttl)
    : secret_(std::move(secret)), ttl_(ttl) {}

ResumeTokenCodec ResumeTokenCodec::WithRandomSecret(absl::Duration ttl) {
  std::string secret(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()),
                 static_cast<int>(secret.size())) != 1) {
    std::abort();  // No randomness: a guessable secret would make tokens forgeable.
  }
  return ResumeTokenCodec(std::move(secret), ttl);
}

std::string ResumeTokenCodec::Mac(absl::string_view payload) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string ResumeTokenCodec::Encode(absl::string_view scope, const ResumePosition& position,
                                     absl::Time now) const {
  const nlohmann::json payload = {{"v", kVersion},
                                  {"f", Fingerprint(scope)},
                                  {"o", position.offset},
                                  {"n", position.items_streamed},
                                  {"e", absl::ToUnixSeconds(now + ttl_)}};
  nlohmann::json with_cursor = payload;
  if (position.cursor.has_value()) {
    with_cursor["c"] = *position.cursor;
    with_cursor["k"] = position.skip;
    with_cursor["a"] = position.after_id;
  }
  const std::string text = with_cursor.dump();
  return absl::StrCat(absl::WebSafeBase64Escape(text), ".", absl::WebSafeBase64Escape(Mac(text)));
}

absl::StatusOr<ResumePosition> ResumeTokenCodec::Decode(absl::string_view token,
                                                        absl::string_view scope,
                                                        absl::Time now) const {
  const size_t dot = token.find('.');
  std::string payload;
  std::string mac;
  if (dot == absl::string_view::npos ||
      !absl::WebSafeBase64Unescape(token.substr(0, dot), &payload) ||
      !absl::WebSafeBase64Unescape(token.substr(dot + 1), &mac)) {
    return Invalid("not a token this gateway made");
  }
  const std::string expected = Mac(payload);
  if (mac.size() != expected.size() ||
      CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Invalid(
        "not a token this gateway made, or it was modified "
        "(replicas need the same paging.resume_token_secret)");
  }
  const nlohmann::json json = nlohmann::json::parse(payload, nullptr, false);
  if (!json.is_object() || !json.contains("v") || !json["v"].is_number_integer() ||
      json["v"].get<int64_t>() != kVersion || !json.contains("f") || !json["f"].is_string() ||
      !json.contains("o") || !json["o"].is_number_integer() || !json.contains("n") ||
      !json["n"].is_number_integer() || !json.contains("e") || !json["e"].is_number_integer()) {
    return Invalid("unsupported token version");
  }
  if (json["f"].get<std::string>() != Fingerprint(scope)) {
    return Invalid(
        "the token was made for other filters or another project; "
        "resume with the same request");
  }
  if (absl::FromUnixSeconds(json["e"].get<int64_t>()) < now) {
    return Invalid("the token expired; start the list again");
  }
  ResumePosition position;
  position.offset = json["o"].get<int64_t>();
  position.items_streamed = json["n"].get<int64_t>();
  if (position.offset < 0 || position.items_streamed < 0) return Invalid("bad position");
  if (json.contains("c")) {
    if (!json["c"].is_string() || !json.contains("k") || !json["k"].is_number_integer() ||
        json["k"].get<int64_t>() < 0 || !json.contains("a") || !json["a"].is_string()) {
      return Invalid("bad position");
    }
    position.cursor = json["c"].get<std::string>();
    position.skip = json["k"].get<int64_t>();
    position.after_id = json["a"].get<std::string>();
  }
  return position;
}

}  // namespace posthog_gateway
