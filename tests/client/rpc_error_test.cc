#include "client/rpc_error.h"

#include <string>
#include <tuple>

#include "google/protobuf/any.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace posthog_client {
namespace {

// Serializes a google.rpc.Status holding `details` in order, the way the
// gateway fills the grpc-status-details-bin trailer.
template <typename... Details>
std::string SerializedDetails(grpc::StatusCode code, const std::string& message,
                              const Details&... details) {
  google::rpc::Status status;
  status.set_code(static_cast<int>(code));
  status.set_message(message);
  (status.add_details()->PackFrom(details), ...);
  return status.SerializeAsString();
}

google::rpc::ErrorInfo MakeErrorInfo() {
  google::rpc::ErrorInfo info;
  info.set_reason("UNKNOWN_PROJECT");
  info.set_domain("posthog-gateway");
  (*info.mutable_metadata())["project"] = "nope";
  (*info.mutable_metadata())["known"] = "demo";
  return info;
}

google::rpc::RetryInfo MakeRetryInfo(int64_t seconds, int32_t nanos) {
  google::rpc::RetryInfo info;
  info.mutable_retry_delay()->set_seconds(seconds);
  info.mutable_retry_delay()->set_nanos(nanos);
  return info;
}

google::rpc::BadRequest MakeBadRequest() {
  google::rpc::BadRequest bad_request;
  auto* first = bad_request.add_field_violations();
  first->set_field("project");
  first->set_description("names no configured project");
  auto* second = bad_request.add_field_violations();
  second->set_field("events[2].distinct_id");
  second->set_description("must not be empty");
  return bad_request;
}

class FromGrpcStatusCodeTest
    : public testing::TestWithParam<std::tuple<grpc::StatusCode, absl::StatusCode>> {};

TEST_P(FromGrpcStatusCodeTest, KeepsCodeAndMessage) {
  const auto [grpc_code, absl_code] = GetParam();

  const absl::Status status = FromGrpcStatus(grpc::Status(grpc_code, "boom"));

  EXPECT_EQ(status.code(), absl_code);
  EXPECT_EQ(status.message(), "boom");
}

INSTANTIATE_TEST_SUITE_P(
    EveryCanonicalCode, FromGrpcStatusCodeTest,
    testing::Values(
        std::make_tuple(grpc::StatusCode::CANCELLED, absl::StatusCode::kCancelled),
        std::make_tuple(grpc::StatusCode::UNKNOWN, absl::StatusCode::kUnknown),
        std::make_tuple(grpc::StatusCode::INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument),
        std::make_tuple(grpc::StatusCode::DEADLINE_EXCEEDED, absl::StatusCode::kDeadlineExceeded),
        std::make_tuple(grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound),
        std::make_tuple(grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists),
        std::make_tuple(grpc::StatusCode::PERMISSION_DENIED, absl::StatusCode::kPermissionDenied),
        std::make_tuple(grpc::StatusCode::RESOURCE_EXHAUSTED, absl::StatusCode::kResourceExhausted),
        std::make_tuple(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StatusCode::kFailedPrecondition),
        std::make_tuple(grpc::StatusCode::ABORTED, absl::StatusCode::kAborted),
        std::make_tuple(grpc::StatusCode::OUT_OF_RANGE, absl::StatusCode::kOutOfRange),
        std::make_tuple(grpc::StatusCode::UNIMPLEMENTED, absl::StatusCode::kUnimplemented),
        std::make_tuple(grpc::StatusCode::INTERNAL, absl::StatusCode::kInternal),
        std::make_tuple(grpc::StatusCode::UNAVAILABLE, absl::StatusCode::kUnavailable),
        std::make_tuple(grpc::StatusCode::DATA_LOSS, absl::StatusCode::kDataLoss),
        std::make_tuple(grpc::StatusCode::UNAUTHENTICATED, absl::StatusCode::kUnauthenticated),
        // A code from a newer or broken peer is not canonical. 17 (the next
        // code a newer gRPC could define) is within the range of values
        // grpc::StatusCode can hold (-1..16 needs 6 bits: -32..31); 42 is
        // not, and casting it was undefined behaviour (UBSan, -fsanitize=enum).
        std::make_tuple(static_cast<grpc::StatusCode>(17), absl::StatusCode::kUnknown)));

class RpcErrorTest : public testing::Test {};

TEST_F(RpcErrorTest, OkStaysOkWithoutPayload) {
  const absl::Status status = FromGrpcStatus(grpc::Status::OK);

  EXPECT_TRUE(status.ok());
  EXPECT_EQ(FormatRpcError(status), "ok");
}

TEST_F(RpcErrorTest, KeepsDetailsInOrderWhenPresent) {
  const std::string details = SerializedDetails(grpc::StatusCode::INVALID_ARGUMENT, "bad",
                                                MakeErrorInfo(), MakeBadRequest());

  const absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad", details));

  const std::optional<google::rpc::Status> kept = RpcStatusDetails(status);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->SerializeAsString(), details);
  ASSERT_EQ(kept->details_size(), 2);
  EXPECT_TRUE(kept->details(0).Is<google::rpc::ErrorInfo>());
  EXPECT_TRUE(kept->details(1).Is<google::rpc::BadRequest>());
}

TEST_F(RpcErrorTest, HasNoDetailsWhenServerSentNone) {
  const absl::Status status = FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone"));

  EXPECT_FALSE(RpcStatusDetails(status).has_value());
  EXPECT_EQ(FormatRpcError(status), "error: NOT_FOUND: gone");
}

TEST_F(RpcErrorTest, FormatsErrorInfoWithSortedMetadata) {
  const absl::Status status = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "project \"nope\" is not configured",
                   SerializedDetails(grpc::StatusCode::INVALID_ARGUMENT, "", MakeErrorInfo())));

  EXPECT_EQ(FormatRpcError(status),
            "error: INVALID_ARGUMENT: project \"nope\" is not configured\n"
            "  ErrorInfo: reason=UNKNOWN_PROJECT domain=posthog-gateway\n"
            "    metadata: known=demo project=nope");
}

TEST_F(RpcErrorTest, FormatsErrorInfoWithoutMetadataOnOneLine) {
  google::rpc::ErrorInfo info;
  info.set_reason("UPSTREAM_CREDENTIALS_REJECTED");
  info.set_domain("posthog-gateway");
  const absl::Status status = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "PostHog refused the gateway's key",
                   SerializedDetails(grpc::StatusCode::PERMISSION_DENIED, "", info)));

  EXPECT_EQ(FormatRpcError(status),
            "error: PERMISSION_DENIED: PostHog refused the gateway's key\n"
            "  ErrorInfo: reason=UPSTREAM_CREDENTIALS_REJECTED "
            "domain=posthog-gateway");
}

TEST_F(RpcErrorTest, FormatsRetryDelayAsDuration) {
  const absl::Status status = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down",
                   SerializedDetails(grpc::StatusCode::RESOURCE_EXHAUSTED, "",
                                     MakeRetryInfo(1, 500000000), MakeRetryInfo(30, 0))));

  EXPECT_EQ(FormatRpcError(status),
            "error: RESOURCE_EXHAUSTED: slow down\n"
            "  RetryInfo: retry after 1.5s\n"
            "  RetryInfo: retry after 30s");
}

TEST_F(RpcErrorTest, FormatsEachFieldViolationOnItsOwnLine) {
  const absl::Status status = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request",
                   SerializedDetails(grpc::StatusCode::INVALID_ARGUMENT, "", MakeBadRequest())));

  EXPECT_EQ(FormatRpcError(status),
            "error: INVALID_ARGUMENT: bad request\n"
            "  BadRequest: project: names no configured project\n"
            "  BadRequest: events[2].distinct_id: must not be empty");
}

TEST_F(RpcErrorTest, FormatsDetailsInTheOrderReceived) {
  const absl::Status status = FromGrpcStatus(grpc::Status(
      grpc::StatusCode::UNAVAILABLE, "PostHog answered 503",
      SerializedDetails(grpc::StatusCode::UNAVAILABLE, "", MakeRetryInfo(2, 0), MakeErrorInfo())));

  EXPECT_EQ(FormatRpcError(status),
            "error: UNAVAILABLE: PostHog answered 503\n"
            "  RetryInfo: retry after 2s\n"
            "  ErrorInfo: reason=UNKNOWN_PROJECT domain=posthog-gateway\n"
            "    metadata: known=demo project=nope");
}

TEST_F(RpcErrorTest, FormatsOtherKnownDetailAsTextProto) {
  google::rpc::ResourceInfo info;
  info.set_resource_type("feature_flag");
  info.set_resource_name("beta");
  const absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such flag",
                                  SerializedDetails(grpc::StatusCode::NOT_FOUND, "", info)));

  EXPECT_EQ(FormatRpcError(status),
            "error: NOT_FOUND: no such flag\n"
            "  ResourceInfo: resource_type: \"feature_flag\" resource_name: "
            "\"beta\"");
}

TEST_F(RpcErrorTest, FormatsUnknownDetailByTypeAndSize) {
  google::rpc::Status details;
  google::protobuf::Any* any = details.add_details();
  any->set_type_url("type.example.com/acme.Secret");
  any->set_value("12345");
  const absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "odd", details.SerializeAsString()));

  EXPECT_EQ(FormatRpcError(status),
            "error: INTERNAL: odd\n"
            "  type.example.com/acme.Secret (5 bytes)");
}

TEST_F(RpcErrorTest, SaysWhenDetailsDoNotParse) {
  // A truncated varint: field 1 (code), with no value byte.
  const absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "odd", std::string("\x08", 1)));

  EXPECT_FALSE(RpcStatusDetails(status).has_value());
  EXPECT_EQ(FormatRpcError(status),
            "error: INTERNAL: odd\n"
            "  (undecodable error details, 1 bytes)");
}

}  // namespace
}  // namespace posthog_client
