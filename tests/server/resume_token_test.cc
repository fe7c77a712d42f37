#include "server/paging/resume_token.h"

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
