#include "client/rpc_error.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/rpc/error_details.pb.h"

namespace posthog_client {
namespace {

constexpr absl::string_view kIndent = "  ";

absl::StatusCode ToAbslCode(grpc::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value < 0 || value > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(value);
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

void AppendErrorInfo(const google::rpc::ErrorInfo& info, std::string& out) {
  absl::StrAppend(&out, "\n", kIndent, "ErrorInfo: reason=", info.reason(),
                  " domain=", info.domain());
  // Proto maps have no order; sort so the output is stable.
  std::vector<std::pair<std::string, std::string>> metadata(info.metadata().begin(),
                                                            info.metadata().end());
  std::sort(metadata.begin(), metadata.end());
  if (metadata.empty()) return;
  absl::StrAppend(&out, "\n", kIndent, kIndent,
                  "metadata: ", absl::StrJoin(metadata, " ", absl::PairFormatter("=")));
}

void AppendRetryInfo(const google::rpc::RetryInfo& info, std::string& out) {
  absl::StrAppend(&out, "\n", kIndent, "RetryInfo: retry after ",
                  absl::FormatDuration(FromProtoDuration(info.retry_delay())));
}

void AppendBadRequest(const google::rpc::BadRequest& bad_request, std::string& out) {
  if (bad_request.field_violations().empty()) {
    absl::StrAppend(&out, "\n", kIndent, "BadRequest: (no field violations)");
  }
  for (const auto& violation : bad_request.field_violations()) {
    absl::StrAppend(&out, "\n", kIndent, "BadRequest: ", violation.field(), ": ",
                    violation.description());
  }
}

// AppendOtherDetail prints a detail of any message type linked into the
// program as its text-format one-liner, and anything else by type and size.
void AppendOtherDetail(const google::protobuf::Any& any, std::string& out) {
  const absl::string_view type_url = any.type_url();
  const size_t slash = type_url.rfind('/');
  const std::string type_name(slash == absl::string_view::npos ? type_url
                                                               : type_url.substr(slash + 1));
  const google::protobuf::Descriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
  if (descriptor != nullptr) {
    const google::protobuf::Message* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
    std::unique_ptr<google::protobuf::Message> message(prototype->New());
    if (message->ParseFromString(any.value())) {
      absl::StrAppend(&out, "\n", kIndent, descriptor->name(), ": ", message->ShortDebugString());
      return;
    }
  }
  absl::StrAppend(&out, "\n", kIndent, type_url, " (", any.value().size(), " bytes)");
}

void AppendDetail(const google::protobuf::Any& any, std::string& out) {
  google::rpc::ErrorInfo error_info;
  google::rpc::RetryInfo retry_info;
  google::rpc::BadRequest bad_request;
  if (any.Is<google::rpc::ErrorInfo>() && any.UnpackTo(&error_info)) {
    AppendErrorInfo(error_info, out);
  } else if (any.Is<google::rpc::RetryInfo>() && any.UnpackTo(&retry_info)) {
    AppendRetryInfo(retry_info, out);
  } else if (any.Is<google::rpc::BadRequest>() && any.UnpackTo(&bad_request)) {
    AppendBadRequest(bad_request, out);
  } else {
    AppendOtherDetail(any, out);
  }
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(ToAbslCode(status.error_code()), status.error_message());
  if (!status.error_details().empty()) {
    result.SetPayload(kRpcStatusPayloadUrl, absl::Cord(status.error_details()));
  }
  return result;
}

std::optional<google::rpc::Status> RpcStatusDetails(const absl::Status& status) {
  const auto payload = status.GetPayload(kRpcStatusPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  google::rpc::Status details;
  if (!details.ParseFromString(std::string(*payload))) return std::nullopt;
  return details;
}

std::string FormatRpcError(const absl::Status& status) {
  if (status.ok()) return "ok";
  std::string out =
      absl::StrCat("error: ", absl::StatusCodeToString(status.code()), ": ", status.message());
  const auto payload = status.GetPayload(kRpcStatusPayloadUrl);
  if (!payload.has_value()) return out;
  const std::optional<google::rpc::Status> details = RpcStatusDetails(status);
  if (!details.has_value()) {
    absl::StrAppend(&out, "\n", kIndent, "(undecodable error details, ", payload->size(),
                    " bytes)");
    return out;
  }
  for (const google::protobuf::Any& any : details->details()) {
    AppendDetail(any, out);
  }
  return out;
}

}  // namespace posthog_client
