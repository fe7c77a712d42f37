#include "server/grpc/status_conversion.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"

namespace posthog_gateway {
namespace {

TEST(StatusConversionTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(StatusConversionTest, PlainErrorKeepsCodeAndMessageWithoutDetails) {
  const grpc::Status status = ToGrpcStatus(absl::NotFoundError("no such flag"));

  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no such flag");
  EXPECT_EQ(status.error_details(), "");
}

TEST(StatusConversionTest, AttachedDetailsBecomeGoogleRpcStatusDetails) {
  absl::Status error = absl::ResourceExhaustedError("slow down");
  AttachErrorInfo(error, "UPSTREAM_RATE_LIMITED", {{"http_status", "429"}});
  AttachRetryDelay(error, absl::Milliseconds(1500));

  const grpc::Status status = ToGrpcStatus(error);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(details.message(), "slow down");
  ASSERT_EQ(details.details_size(), 2);
  google::rpc::ErrorInfo info;
  google::rpc::RetryInfo retry;
  for (const auto& any : details.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) {
      ASSERT_TRUE(any.UnpackTo(&info));
    }
    if (any.Is<google::rpc::RetryInfo>()) {
      ASSERT_TRUE(any.UnpackTo(&retry));
    }
  }
  EXPECT_EQ(info.reason(), "UPSTREAM_RATE_LIMITED");
  EXPECT_EQ(info.domain(), "posthog-gateway");
  EXPECT_EQ(info.metadata().at("http_status"), "429");
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  EXPECT_EQ(retry.retry_delay().nanos(), 500000000);
}

TEST(StatusConversionTest, BadRequestViolationsSurvive) {
  const grpc::Status status = ToGrpcStatus(InvalidArgumentWithViolations(
      "bad events", {{"events[2].distinct_id", "must not be empty"}}));

  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
  ASSERT_EQ(bad_request.field_violations_size(), 1);
  EXPECT_EQ(bad_request.field_violations(0).field(), "events[2].distinct_id");
  EXPECT_EQ(bad_request.field_violations(0).description(), "must not be empty");
}

}  // namespace
}  // namespace posthog_gateway
