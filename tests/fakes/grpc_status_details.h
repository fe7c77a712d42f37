#ifndef TESTS_FAKES_GRPC_STATUS_DETAILS_H_
#define TESTS_FAKES_GRPC_STATUS_DETAILS_H_

// Reading the google.rpc details of a grpc::Status in tests.

#include <string>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"

namespace posthog_gateway::test_support {

// ErrorReason returns the ErrorInfo reason in the status's details ("" if none).
inline std::string ErrorReason(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

// ViolatedFields returns the fields of the status's BadRequest, in order.
inline std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return fields;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad_request;
    if (!any.UnpackTo(&bad_request)) continue;
    for (const auto& violation : bad_request.field_violations()) {
      fields.push_back(violation.field());
    }
  }
  return fields;
}

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_GRPC_STATUS_DETAILS_H_
