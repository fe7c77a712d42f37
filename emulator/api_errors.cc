#include "emulator/api_errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace posthog_emulator {
namespace {

constexpr char kCodePayload[] = "posthog.code";
constexpr char kAttrPayload[] = "posthog.attr";

absl::Status WithCode(absl::Status status, absl::string_view code, absl::string_view attr = "") {
  status.SetPayload(kCodePayload, absl::Cord(code));
  if (!attr.empty()) status.SetPayload(kAttrPayload, absl::Cord(attr));
  return status;
}

std::string Payload(const absl::Status& status, absl::string_view name,
                    absl::string_view fallback) {
  auto value = status.GetPayload(name);
  return value.has_value() ? std::string(*value) : std::string(fallback);
}

}  // namespace

nlohmann::json ErrorBody(absl::string_view type, absl::string_view code, absl::string_view detail,
                         absl::string_view attr) {
  nlohmann::json body = {{"type", std::string(type)},
                         {"code", std::string(code)},
                         {"detail", std::string(detail)},
                         {"attr", nullptr}};
  if (!attr.empty()) body["attr"] = std::string(attr);
  return body;
}

absl::Status NotAuthenticatedError() {
  return WithCode(absl::UnauthenticatedError("Authentication credentials were not provided."),
                  "not_authenticated");
}

absl::Status AuthenticationFailedError(absl::string_view detail) {
  return WithCode(absl::UnauthenticatedError(detail), "authentication_failed");
}

absl::Status PermissionDeniedError(absl::string_view detail) {
  return WithCode(absl::PermissionDeniedError(detail), "permission_denied");
}

absl::Status NotFoundError() { return WithCode(absl::NotFoundError("Not found."), "not_found"); }

absl::Status ValidationError(absl::string_view code, absl::string_view detail,
                             absl::string_view attr) {
  return WithCode(absl::InvalidArgumentError(detail), code, attr);
}

absl::Status MethodNotAllowedError(absl::string_view detail) {
  return WithCode(absl::UnimplementedError(detail), "method_not_allowed");
}

absl::Status ConflictError(absl::string_view detail) {
  return WithCode(absl::AbortedError(detail), "conflict");
}

absl::Status ThrottledError(int wait_seconds) {
  // DRF's Throttled message, singular for exactly one second.
  return WithCode(absl::ResourceExhaustedError(
                      absl::StrCat("Request was throttled. Expected available in ", wait_seconds,
                                   wait_seconds == 1 ? " second." : " seconds.")),
                  "throttled");
}

HttpError ToHttpError(const absl::Status& status) {
  const std::string detail(status.message());
  const std::string attr = Payload(status, kAttrPayload, "");
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      return {401, ErrorBody("authentication_error",
                             Payload(status, kCodePayload, "authentication_failed"), detail)};
    case absl::StatusCode::kPermissionDenied:
      return {403, ErrorBody("authentication_error",
                             Payload(status, kCodePayload, "permission_denied"), detail)};
    case absl::StatusCode::kNotFound:
      return {404,
              ErrorBody("invalid_request", Payload(status, kCodePayload, "not_found"), detail)};
    case absl::StatusCode::kInvalidArgument:
      return {400, ErrorBody("validation_error", Payload(status, kCodePayload, "invalid_input"),
                             detail, attr)};
    case absl::StatusCode::kUnimplemented:
      return {405, ErrorBody("invalid_request", Payload(status, kCodePayload, "method_not_allowed"),
                             detail)};
    case absl::StatusCode::kAborted:
      return {409, ErrorBody("invalid_request", Payload(status, kCodePayload, "conflict"), detail)};
    case absl::StatusCode::kResourceExhausted:
      return {429,
              ErrorBody("throttled_error", Payload(status, kCodePayload, "throttled"), detail)};
    default:
      return {500, ErrorBody("server_error", Payload(status, kCodePayload, "error"),
                             "A server error occurred.")};
  }
}

}  // namespace posthog_emulator
