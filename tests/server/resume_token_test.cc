#include "server/paging/resume_token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"

namespace posthog_gateway {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST(ResumeTokenTest, RoundTripsThePosition) {
  ResumeTokenCodec codec("secret", absl::Hours(1));
  const std::string token = codec.Encode("demo|email=a", {1234, 99}, kNow);
  absl::StatusOr<ResumePosition> position = codec.Decode(token, "demo|email=a", kNow);
  ASSERT_TRUE(position.ok()) << position.status();
  EXPECT_EQ(position->offset, 1234);
  EXPECT_EQ(position->items_streamed, 99);
}

TEST(ResumeTokenTest, RevealsNeitherTheFiltersNorTheSecret) {
  ResumeTokenCodec codec("phx_the_secret", absl::Hours(1));
  const std::string token = codec.Encode("demo|email=ada@example.com", {1, 1}, kNow);
  std::string payload;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token.substr(0, token.find('.')), &payload));
  EXPECT_EQ(payload.find("ada"), std::string::npos) << payload;
  EXPECT_EQ(payload.find("phx_"), std::string::npos) << payload;
}

TEST(ResumeTokenTest, AModifiedTokenIsInvalidArgument) {
  ResumeTokenCodec codec("secret", absl::Hours(1));
  const std::string token = codec.Encode("scope", {100, 100}, kNow);
  std::string payload;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token.substr(0, token.find('.')), &payload));
  const size_t at = payload.find("100");
  ASSERT_NE(at, std::string::npos);
  payload.replace(at, 3, "900");
  const std::string forged =
      absl::StrCat(absl::WebSafeBase64Escape(payload), token.substr(token.find('.')));
  const absl::Status status = codec.Decode(forged, "scope", kNow).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorInfoReason(status), "INVALID_RESUME_TOKEN");
}

TEST(ResumeTokenTest, ATokenFromAnotherSecretIsInvalidArgument) {
  ResumeTokenCodec ours("secret", absl::Hours(1));
  ResumeTokenCodec theirs("other", absl::Hours(1));
  EXPECT_EQ(ours.Decode(theirs.Encode("s", {1, 1}, kNow), "s", kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A token whose MAC is right but whose payload this version did not write
// (another gateway version sharing paging.resume_token_secret): its members
// are checked for their type before they are read. A string "v" made
// nlohmann's value("v", 0) throw and abort the gateway (a fuzzer's find).
TEST(ResumeTokenTest, ASignedPayloadWithMembersOfOtherTypesIsInvalidArgument) {
  constexpr absl::string_view kSecret = "secret";
  ResumeTokenCodec codec(std::string(kSecret), absl::Hours(1));
  const auto signed_token = [&](absl::string_view payload) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
         reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &length);
    return absl::StrCat(
        absl::WebSafeBase64Escape(payload), ".",
        absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(mac), length)));
  };
  for (const char* payload : {R"({"e":176205,"v":"abcd","n":1881})", R"({"v":1.5})", R"({"v":[1]})",
                              R"([1])", R"("v")"}) {
    const absl::Status status = codec.Decode(signed_token(payload), "s", kNow).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << payload;
    EXPECT_EQ(ErrorInfoReason(status), "INVALID_RESUME_TOKEN") << payload;
  }
}

TEST(ResumeTokenTest, GarbageIsInvalidArgument) {
  ResumeTokenCodec codec("secret", absl::Hours(1));
  for (const char* token : {"", ".", "abc", "abc.def", "!!!.???"}) {
    EXPECT_EQ(codec.Decode(token, "s", kNow).status().code(), absl::StatusCode::kInvalidArgument)
        << token;
  }
}

TEST(ResumeTokenTest, ATokenForOtherFiltersIsInvalidArgument) {
  ResumeTokenCodec codec("secret", absl::Hours(1));
  const absl::Status status =
      codec.Decode(codec.Encode("demo|email=a", {1, 1}, kNow), "demo|email=b", kNow).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("other filters"), absl::string_view::npos);
}

TEST(ResumeTokenTest, AnExpiredTokenIsInvalidArgumentSayingSo) {
  ResumeTokenCodec codec("secret", absl::Hours(1));
  const std::string token = codec.Encode("s", {1, 1}, kNow);
  EXPECT_TRUE(codec.Decode(token, "s", kNow + absl::Minutes(59)).ok());
  const absl::Status status = codec.Decode(token, "s", kNow + absl::Minutes(61)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("expired"), absl::string_view::npos);
}

TEST(ResumeTokenTest, RandomSecretsDiffer) {
  ResumeTokenCodec a = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  ResumeTokenCodec b = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  EXPECT_FALSE(b.Decode(a.Encode("s", {1, 1}, kNow), "s", kNow).ok());
}

}  // namespace
}  // namespace posthog_gateway
