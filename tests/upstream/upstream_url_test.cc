#include "server/posthog/upstream_url.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "server/posthog/personal_key_routes.h"

namespace posthog_gateway {
namespace {

TEST(UpstreamUrlTest, BuildsPathAndQueryFromEncodedParts) {
  absl::StatusOr<std::string> target = UpstreamUrl()
                                           .Literal("api")
                                           .Literal("projects")
                                           .Segment(int64_t{7})
                                           .Literal("persons")
                                           .Segment("a b/c?d#e%")
                                           .TrailingSlash()
                                           .Query("distinct_id", "x&y=z")
                                           .Query("limit", int64_t{1})
                                           .QueryFlag("send_cohorts")
                                           .Build();
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(*target,
            "/api/projects/7/persons/a%20b%2Fc%3Fd%23e%25/"
            "?distinct_id=x%26y%3Dz&limit=1&send_cohorts");
}

TEST(UpstreamUrlTest, EncodesEverythingButUnreservedCharacters) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode(std::string("\0\r\n/\\@+", 7)), "%00%0D%0A%2F%5C%40%2B");
  EXPECT_EQ(PercentEncode("\xff\xc3\xa9"), "%FF%C3%A9");
  EXPECT_EQ(PercentEncode("%2e%2e"), "%252e%252e");
}

TEST(UpstreamUrlTest, RefusesEmptyAndDotSegments) {
  for (const std::string& bad : {std::string(""), std::string("."), std::string("..")}) {
    UpstreamUrl url;
    url.Literal("api").Segment(bad).TrailingSlash();
    EXPECT_EQ(url.Build().status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // Encoded, these are harmless literal text to PostHog.
  EXPECT_EQ(*UpstreamUrl().Segment("%2e%2e").Build(), "/%252e%252e");
  EXPECT_EQ(*UpstreamUrl().Segment("...").Build(), "/...");
}

TEST(UpstreamUrlTest, RefusesLiteralsThatAreNotPlainRouteWords) {
  for (const char* bad : {"", ".", "..", "a/b", "a%2F", "a b", "a?b"}) {
    EXPECT_FALSE(UpstreamUrl().Literal(bad).Build().ok()) << bad;
  }
  EXPECT_EQ(*UpstreamUrl().Literal("api").Literal("users").Literal("@me").TrailingSlash().Build(),
            "/api/users/@me/");
}

TEST(UpstreamUrlTest, TheFirstRefusedPartIsTheStatus) {
  UpstreamUrl url;
  url.Segment("..").Query("", "x");
  EXPECT_EQ(url.status().message(), "an upstream path segment is a dot segment");
}

TEST(ParseUpstreamTargetTest, RoundTripsWhatTheBuilderBuilds) {
  for (const std::string& target :
       {std::string("/"), std::string("/batch/"), std::string("/flags/?v=2"),
        std::string("/flags/definitions?token=phc_x&send_cohorts"), std::string("/api/users/@me/"),
        std::string("/api/projects/7/persons/?properties=%5B%7B%22key%22%3A1%7D%5D&limit=100")}) {
    absl::StatusOr<UpstreamUrl> url = ParseUpstreamTarget(target);
    ASSERT_TRUE(url.ok()) << target << ": " << url.status();
    EXPECT_EQ(*url->Build(), target);
  }
  absl::StatusOr<UpstreamUrl> list = ParseUpstreamTarget("/api/projects/7/persons/?email=a%40b");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->Path(), "/api/projects/7/persons/");
  EXPECT_EQ(list->EncodedQuery(), "email=a%40b");
  EXPECT_EQ(*list->Query("offset", int64_t{100}).Build(),
            "/api/projects/7/persons/?email=a%40b&offset=100");
}

TEST(ParseUpstreamTargetTest, RefusesWhatTheBuilderNeverBuilds) {
  for (const std::string& target :
       {std::string(""),         std::string("api/"),   std::string("//"),
        std::string("/a//b/"),   std::string("/./"),    std::string("/../"),
        std::string("/a/../"),   std::string("/a/.."),  std::string("/%2e%2e/"),
        std::string("/%2E%2E/"), std::string("/%2E/"),  std::string("/.%2E/"),
        std::string("/a%2f/"),   std::string("/a%/"),   std::string("/a%4/"),
        std::string("/a b/"),    std::string("/a?b c"), std::string("/a?"),
        std::string("/a?=b"),    std::string("/a#b"),   std::string("/a?b#c"),
        std::string("/a\r\n"),   std::string("/a?b=@"), std::string("/a\0b", 4),
        std::string("/a\\b")}) {
    EXPECT_FALSE(ParseUpstreamTarget(target).ok()) << target;
  }
}

TEST(IdValidationTest, PersonUuidsAreUuids) {
  EXPECT_TRUE(ValidatePersonUuid("person.uuid", "01908d6b-0001-7000-8000-00000000000A").ok());
  for (const std::string& bad : {std::string(""), std::string(".."), std::string("u-1"),
                                 std::string("01908d6b-0001-7000-8000-00000000000"),
                                 std::string("01908d6b-0001-7000-8000-0000000000001"),
                                 std::string("01908d6b00001-7000-8000-000000000001"),
                                 std::string("01908d6g-0001-7000-8000-000000000001"),
                                 std::string("01908d6b-0001-7000-8000-00000000000/")}) {
    const absl::Status status = ValidatePersonUuid("person.uuid", bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IdValidationTest, NumericIdsArePositive) {
  EXPECT_TRUE(ValidatePositiveId("id", 1).ok());
  EXPECT_TRUE(ValidatePositiveId("id", std::numeric_limits<int64_t>::max()).ok());
  EXPECT_EQ(ValidatePositiveId("id", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidatePositiveId("id", std::numeric_limits<int64_t>::min()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IdValidationTest, FlagKeysFollowPostHogsSyntax) {
  EXPECT_TRUE(ValidateFlagKey("flag.key", "beta-2_X").ok());
  EXPECT_TRUE(ValidateFlagKey("flag.key", std::string(kMaxFlagKeyLength, 'k')).ok());
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string("a.b"), std::string("a b"),
        std::string("a/b"), std::string("é"), std::string(kMaxFlagKeyLength + 1, 'k')}) {
    EXPECT_EQ(ValidateFlagKey("flag.key", bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PersonalKeyRoutesTest, MatchesTemplatesSegmentBySegment) {
  const auto match = [](const char* method, const char* target) {
    absl::StatusOr<UpstreamUrl> url = ParseUpstreamTarget(target);
    EXPECT_TRUE(url.ok()) << target;
    return MatchPersonalKeyRoute(method, *url, 7);
  };
  EXPECT_EQ(match("GET", "/api/projects/7/persons/42/"),
            "/api/projects/{project}/persons/{person}/");
  EXPECT_EQ(match("GET", "/api/projects/7/feature_flags/12/"),
            "/api/projects/{project}/feature_flags/{id}/");
  EXPECT_EQ(match("GET", "/flags/definitions?token=x"), "/flags/definitions");
  EXPECT_FALSE(match("GET", "/api/projects/7/feature_flags/012/").has_value());
  EXPECT_FALSE(match("GET", "/api/projects/7/feature_flags/9223372036854775808/").has_value());
  EXPECT_FALSE(match("GET", "/api/projects/07/persons/").has_value());
  EXPECT_FALSE(match("GET", "/api/projects/7/persons").has_value());
  EXPECT_FALSE(match("get", "/api/projects/7/persons/").has_value());
  EXPECT_FALSE(match("GET", "/flags/definitions/").has_value());
}

}  // namespace
}  // namespace posthog_gateway
