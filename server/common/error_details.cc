#include "server/common/error_details.h"

#include "absl/strings/cord.h"
#include "google/protobuf/duration.pb.h"
#include "google/rpc/error_details.pb.h"

namespace posthog_gateway {
namespace {

constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com/";

template <typename Proto>
std::string TypeUrl() {
  return std::string(kTypeUrlPrefix) + Proto::descriptor()->full_name();
}

template <typename Proto>
void Attach(absl::Status& status, const Proto& detail) {
  if (status.ok()) return;  // An OK status cannot carry payloads.
  status.SetPayload(TypeUrl<Proto>(), absl::Cord(detail.SerializeAsString()));
}

template <typename Proto>
std::optional<Proto> Get(const absl::Status& status) {
  auto payload = status.GetPayload(TypeUrl<Proto>());
  if (!payload.has_value()) return std::nullopt;
  Proto detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return detail;
}

}  // namespace

void AttachErrorInfo(absl::Status& status, absl::string_view reason,
                     const std::map<std::string, std::string>& metadata) {
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  Attach(status, info);
}

void AttachRetryDelay(absl::Status& status, absl::Duration delay) {
  google::rpc::RetryInfo info;
  if (delay < absl::ZeroDuration()) delay = absl::ZeroDuration();
  const int64_t seconds = absl::IDivDuration(delay, absl::Seconds(1), &delay);
  info.mutable_retry_delay()->set_seconds(seconds);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(delay)));
  Attach(status, info);
}

void AttachBadRequest(absl::Status& status, const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad_request;
  for (const FieldViolation& violation : violations) {
    auto* v = bad_request.add_field_violations();
    v->set_field(violation.field);
    v->set_description(violation.description);
  }
  Attach(status, bad_request);
}

absl::Status InvalidArgumentWithViolations(absl::string_view message,
                                           const std::vector<FieldViolation>& violations) {
  absl::Status status = absl::InvalidArgumentError(message);
  AttachBadRequest(status, violations);
  return status;
}

std::optional<std::string> ErrorInfoReason(const absl::Status& status) {
  std::optional<google::rpc::ErrorInfo> info = Get<google::rpc::ErrorInfo>(status);
  if (!info.has_value()) return std::nullopt;
  return info->reason();
}

std::optional<absl::Duration> RetryDelay(const absl::Status& status) {
  std::optional<google::rpc::RetryInfo> info = Get<google::rpc::RetryInfo>(status);
  if (!info.has_value()) return std::nullopt;
  return absl::Seconds(info->retry_delay().seconds()) +
         absl::Nanoseconds(info->retry_delay().nanos());
}

}  // namespace posthog_gateway
