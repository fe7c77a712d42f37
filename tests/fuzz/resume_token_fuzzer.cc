// Fuzzes resume token decoding twice per input: the input as a token, as a
// caller would send it, and the input as the payload of a token carrying a
// valid MAC (so the fuzzer reaches the payload's JSON and its checks, which a
// forged MAC would stop before).

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/paging/resume_token.h"

namespace {

constexpr absl::string_view kSecret = "fuzz-secret-0123456789abcdef";
constexpr absl::string_view kScope = "project=1|filters=";

std::string SignedToken(absl::string_view payload) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &length);
  return absl::StrCat(
      absl::WebSafeBase64Escape(payload), ".",
      absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(mac), length)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const posthog_gateway::ResumeTokenCodec codec(std::string(kSecret), absl::Hours(1));
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const absl::Time now = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  (void)codec.Decode(input, kScope, now);
  (void)codec.Decode(SignedToken(input), kScope, now);
  return 0;
}
