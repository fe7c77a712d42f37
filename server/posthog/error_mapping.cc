#include "server/posthog/error_mapping.h"

#include <algorithm>
#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"
#include "server/common/redact.h"

namespace posthog_gateway {
namespace {

constexpr size_t kMaxDetailBytes = 300;

// What could be read from PostHog's error body.
struct ErrorBody {
  std::string type;
  std::string code;
  std::string detail;
  std::string attr;
};

std::string JsonText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

ErrorBody ParseErrorBody(absl::string_view body) {
  ErrorBody parsed;
  const nlohmann::json json = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (json.is_object()) {
    if (json.contains("type")) parsed.type = JsonText(json["type"]);
    if (json.contains("code")) parsed.code = JsonText(json["code"]);
    if (json.contains("detail"))
      parsed.detail = JsonText(json["detail"]);
    else if (json.contains("error"))
      parsed.detail = JsonText(json["error"]);
    if (json.contains("attr")) parsed.attr = JsonText(json["attr"]);
  } else {
    parsed.detail = std::string(absl::StripAsciiWhitespace(body));
  }
  parsed.type = Truncate(RedactKeys(parsed.type), 64);
  parsed.code = Truncate(RedactKeys(parsed.code), 64);
  parsed.detail = Truncate(RedactKeys(parsed.detail), kMaxDetailBytes);
  parsed.attr = Truncate(RedactKeys(parsed.attr), 64);
  return parsed;
}

struct Mapping {
  absl::StatusCode code;
  absl::string_view reason;
};

Mapping MapStatusCode(int http_status) {
  switch (http_status) {
    case 400:
    case 413:
      return {absl::StatusCode::kInvalidArgument, reasons::kUpstreamInvalidRequest};
    case 401:
    case 403:
      return {absl::StatusCode::kPermissionDenied, reasons::kUpstreamCredentialsRejected};
    case 402:
      return {absl::StatusCode::kResourceExhausted, reasons::kUpstreamQuotaExceeded};
    case 404:
      return {absl::StatusCode::kNotFound, reasons::kUpstreamNotFound};
    case 405:
      return {absl::StatusCode::kUnimplemented, reasons::kUpstreamMethodNotAllowed};
    case 408:
      return {absl::StatusCode::kUnavailable, reasons::kUpstreamTimeout};
    case 409:
      return {absl::StatusCode::kAborted, reasons::kUpstreamConflict};
    case 429:
      return {absl::StatusCode::kResourceExhausted, reasons::kUpstreamRateLimited};
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) {
    return {absl::StatusCode::kFailedPrecondition, reasons::kUpstreamRejected};
  }
  if (http_status >= 500 && http_status < 600) {
    return {absl::StatusCode::kUnavailable, reasons::kUpstreamUnavailable};
  }
  return {absl::StatusCode::kUnknown, reasons::kUpstreamUnexpectedStatus};
}

std::string Message(int http_status, const Mapping& mapping, absl::string_view operation,
                    const ErrorBody& body) {
  std::string what = absl::StrCat("HTTP ", http_status);
  if (!body.code.empty()) absl::StrAppend(&what, " ", body.code);
  if (!body.detail.empty()) absl::StrAppend(&what, ": ", body.detail);
  if (!body.attr.empty()) absl::StrAppend(&what, " (field ", body.attr, ")");
  if (mapping.code == absl::StatusCode::kPermissionDenied) {
    return absl::StrCat("PostHog refused the gateway's credentials for ", operation, " (", what,
                        "). This is a problem with the key configured in the gateway, not with "
                        "the caller; retrying will not help until the gateway's operator fixes it");
  }
  return absl::StrCat("PostHog answered ", operation, " with ", what);
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  int64_t seconds = 0;
  if (absl::SimpleAtoi(value, &seconds)) {
    if (seconds < 0) return std::nullopt;
    return std::min(absl::Seconds(seconds), kMaxRetryAfter);
  }
  absl::Time when;
  std::string error;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", value, absl::UTCTimeZone(), &when, &error)) {
    return std::clamp(when - now, absl::ZeroDuration(), kMaxRetryAfter);
  }
  return std::nullopt;
}

std::optional<absl::Duration> ParseExpectedAvailable(absl::string_view detail) {
  constexpr absl::string_view kMarker = "available in ";
  const size_t at = detail.find(kMarker);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = detail.substr(at + kMarker.size());
  const size_t end = rest.find_first_not_of("0123456789.");
  double seconds = 0;
  if (!absl::SimpleAtod(rest.substr(0, end), &seconds) || seconds < 0) {
    return std::nullopt;
  }
  return std::min(absl::Seconds(seconds), kMaxRetryAfter);
}

absl::Status StatusFromHttpResponse(const HttpResponse& response, absl::string_view operation,
                                    absl::Time now) {
  const int http_status = response.status_code;
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();

  const Mapping mapping = MapStatusCode(http_status);
  const ErrorBody body = ParseErrorBody(response.body);
  absl::Status status(mapping.code, Message(http_status, mapping, operation, body));

  std::map<std::string, std::string> metadata = {{"http_status", absl::StrCat(http_status)}};
  if (!body.type.empty()) metadata["posthog_type"] = body.type;
  if (!body.code.empty()) metadata["posthog_code"] = body.code;
  if (!body.attr.empty()) metadata["posthog_attr"] = body.attr;
  AttachErrorInfo(status, mapping.reason, metadata);

  std::optional<absl::Duration> delay;
  if (std::optional<std::string> header = response.Header("retry-after")) {
    delay = ParseRetryAfter(*header, now);
  }
  if (!delay.has_value() && http_status == 429) {
    delay = ParseExpectedAvailable(body.detail);
    if (!delay.has_value()) delay = absl::Seconds(1);
  }
  if (delay.has_value() && (http_status == 429 || http_status == 408 || http_status >= 500)) {
    AttachRetryDelay(status, *delay);
  }
  return status;
}

}  // namespace posthog_gateway
