#include "server/posthog/error_mapping.h"

#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"

namespace posthog_gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1767323045);  // 2026-01-02T03:04:05Z

struct MappingCase {
  std::string name;
  int http_status;
  std::string body;
  HttpHeaders headers;
  absl::StatusCode code;
  std::string reason;
  std::optional<absl::Duration> retry_delay;
  std::string message_part;
};

class ErrorMappingTest : public ::testing::TestWithParam<MappingCase> {};

TEST_P(ErrorMappingTest, MapsStatusBodyAndHeaders) {
  const MappingCase& c = GetParam();
  HttpResponse response;
  response.status_code = c.http_status;
  response.body = c.body;
  response.headers = c.headers;

  const absl::Status status = StatusFromHttpResponse(response, "GET /api/x/", kNow);

  EXPECT_EQ(status.code(), c.code);
  if (c.code == absl::StatusCode::kOk) return;
  EXPECT_EQ(ErrorInfoReason(status), c.reason);
  EXPECT_EQ(RetryDelay(status), c.retry_delay);
  EXPECT_THAT(std::string(status.message()), HasSubstr(c.message_part));
}

const char kThrottled[] =
    R"({"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 17 seconds.","attr":null})";

INSTANTIATE_TEST_SUITE_P(
    Table, ErrorMappingTest,
    ::testing::Values(
        MappingCase{"Ok200", 200, "{}", {}, absl::StatusCode::kOk, "", std::nullopt, ""},
        MappingCase{"Accepted202", 202, "", {}, absl::StatusCode::kOk, "", std::nullopt, ""},
        MappingCase{
            "BadRequest400",
            400,
            R"({"type":"validation_error","code":"required","detail":"This field is required.","attr":"value"})",
            {},
            absl::StatusCode::kInvalidArgument,
            "UPSTREAM_INVALID_REQUEST",
            std::nullopt,
            "HTTP 400 required: This field is required. (field value)"},
        MappingCase{
            "Unauthorized401",
            401,
            R"({"type":"authentication_error","code":"authentication_failed","detail":"Personal API key found in request Authorization header is invalid.","attr":null})",
            {},
            absl::StatusCode::kPermissionDenied,
            "UPSTREAM_CREDENTIALS_REJECTED",
            std::nullopt,
            "PostHog refused the gateway's credentials"},
        MappingCase{
            "Forbidden403",
            403,
            R"({"type":"authentication_error","code":"permission_denied","detail":"API key missing required scope 'person:read'","attr":null})",
            {},
            absl::StatusCode::kPermissionDenied,
            "UPSTREAM_CREDENTIALS_REJECTED",
            std::nullopt,
            "person:read"},
        MappingCase{"PaymentRequired402",
                    402,
                    "Billing limit reached",
                    {},
                    absl::StatusCode::kResourceExhausted,
                    "UPSTREAM_QUOTA_EXCEEDED",
                    std::nullopt,
                    "Billing limit reached"},
        MappingCase{
            "NotFound404",
            404,
            R"({"type":"invalid_request","code":"not_found","detail":"Not found.","attr":null})",
            {},
            absl::StatusCode::kNotFound,
            "UPSTREAM_NOT_FOUND",
            std::nullopt,
            "HTTP 404 not_found: Not found."},
        MappingCase{"MethodNotAllowed405",
                    405,
                    "",
                    {},
                    absl::StatusCode::kUnimplemented,
                    "UPSTREAM_METHOD_NOT_ALLOWED",
                    std::nullopt,
                    "HTTP 405"},
        MappingCase{"RequestTimeout408",
                    408,
                    "",
                    {},
                    absl::StatusCode::kUnavailable,
                    "UPSTREAM_TIMEOUT",
                    std::nullopt,
                    "HTTP 408"},
        MappingCase{"Conflict409",
                    409,
                    R"({"detail":"version mismatch"})",
                    {},
                    absl::StatusCode::kAborted,
                    "UPSTREAM_CONFLICT",
                    std::nullopt,
                    "version mismatch"},
        MappingCase{
            "TooLarge413",
            413,
            R"({"status":413,"code":"payload_too_large","error":"maximum event size exceeded"})",
            {},
            absl::StatusCode::kInvalidArgument,
            "UPSTREAM_INVALID_REQUEST",
            std::nullopt,
            "payload_too_large: maximum event size exceeded"},
        MappingCase{"Unprocessable422",
                    422,
                    "",
                    {},
                    absl::StatusCode::kFailedPrecondition,
                    "UPSTREAM_REJECTED",
                    std::nullopt,
                    "HTTP 422"},
        MappingCase{"Throttled429RetryAfterSeconds",
                    429,
                    kThrottled,
                    {{"retry-after", "42"}},
                    absl::StatusCode::kResourceExhausted,
                    "UPSTREAM_RATE_LIMITED",
                    absl::Seconds(42),
                    "throttled"},
        MappingCase{"Throttled429RetryAfterDate",
                    429,
                    "",
                    {{"retry-after", "Fri, 02 Jan 2026 03:04:35 GMT"}},
                    absl::StatusCode::kResourceExhausted,
                    "UPSTREAM_RATE_LIMITED",
                    absl::Seconds(30),
                    "HTTP 429"},
        MappingCase{"Throttled429HugeRetryAfterIsClamped",
                    429,
                    kThrottled,
                    {{"retry-after", "999999"}},
                    absl::StatusCode::kResourceExhausted,
                    "UPSTREAM_RATE_LIMITED",
                    kMaxRetryAfter,
                    "throttled"},
        MappingCase{"Throttled429FarRetryAfterDateIsClamped",
                    429,
                    "",
                    {{"retry-after", "Fri, 01 Jan 2100 00:00:00 GMT"}},
                    absl::StatusCode::kResourceExhausted,
                    "UPSTREAM_RATE_LIMITED",
                    kMaxRetryAfter,
                    "HTTP 429"},
        MappingCase{
            "Throttled429HugeExpectedAvailableIsClamped",
            429,
            R"({"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 999999 seconds.","attr":null})",
            {},
            absl::StatusCode::kResourceExhausted,
            "UPSTREAM_RATE_LIMITED",
            kMaxRetryAfter,
            "throttled"},
        MappingCase{"Unavailable503HugeRetryAfterIsClamped",
                    503,
                    "",
                    {{"Retry-After", "99999999999"}},
                    absl::StatusCode::kUnavailable,
                    "UPSTREAM_UNAVAILABLE",
                    kMaxRetryAfter,
                    "HTTP 503"},
        MappingCase{"Throttled429ExpectedAvailable",
                    429,
                    kThrottled,
                    {},
                    absl::StatusCode::kResourceExhausted,
                    "UPSTREAM_RATE_LIMITED",
                    absl::Seconds(17),
                    "Expected available in 17 seconds"},
        MappingCase{
            "Throttled429RustBodyDefaultsToOneSecond",
            429,
            R"({"type":"validation_error","code":"rate_limit_exceeded","detail":"Rate limit exceeded","attr":null})",
            {},
            absl::StatusCode::kResourceExhausted,
            "UPSTREAM_RATE_LIMITED",
            absl::Seconds(1),
            "rate_limit_exceeded"},
        MappingCase{"ServerError500PlainText",
                    500,
                    "failed to parse request: oops",
                    {},
                    absl::StatusCode::kUnavailable,
                    "UPSTREAM_UNAVAILABLE",
                    std::nullopt,
                    "failed to parse request: oops"},
        MappingCase{"Unavailable503RetryAfter",
                    503,
                    "",
                    {{"Retry-After", "5"}},
                    absl::StatusCode::kUnavailable,
                    "UPSTREAM_UNAVAILABLE",
                    absl::Seconds(5),
                    "HTTP 503"},
        MappingCase{"Redirect302",
                    302,
                    "",
                    {},
                    absl::StatusCode::kUnknown,
                    "UPSTREAM_UNEXPECTED_STATUS",
                    std::nullopt,
                    "HTTP 302"}),
    [](const ::testing::TestParamInfo<MappingCase>& info) { return info.param.name; });

TEST(ErrorMappingKeysTest, RedactsKeysEchoedInTheBody) {
  HttpResponse response;
  response.status_code = 401;
  response.body = R"({"detail":"key phx_abcdefSECRET123 is invalid","code":"x"})";

  const absl::Status status = StatusFromHttpResponse(response, "GET /api/x/", kNow);

  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("abcdefSECRET123")));
  EXPECT_THAT(std::string(status.message()), HasSubstr("phx_[redacted]"));
}

TEST(ErrorMappingKeysTest, TruncatesHugeBodies) {
  HttpResponse response;
  response.status_code = 500;
  response.body = std::string(100000, 'x');

  const absl::Status status = StatusFromHttpResponse(response, "GET /api/x/", kNow);

  EXPECT_LT(status.message().size(), 1000u);
}

TEST(ParseRetryAfterTest, RejectsGarbageAndNegativeValues) {
  EXPECT_EQ(ParseRetryAfter("soon", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-3", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter(" 7 ", kNow), absl::Seconds(7));
}

TEST(ParseRetryAfterTest, PastDateMeansNoWait) {
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 2026 00:00:00 GMT", kNow), absl::ZeroDuration());
}

TEST(ParseExpectedAvailableTest, ReadsFractionalSeconds) {
  EXPECT_EQ(ParseExpectedAvailable("Expected available in 2.5 seconds."), absl::Milliseconds(2500));
  EXPECT_EQ(ParseExpectedAvailable("Request was throttled."), std::nullopt);
}

}  // namespace
}  // namespace posthog_gateway
