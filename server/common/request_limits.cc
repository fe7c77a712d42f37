#include "server/common/request_limits.h"

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"

namespace posthog_gateway {

absl::Status CheckCountLimit(absl::string_view rpc, absl::string_view field, int64_t count,
                             int64_t max) {
  if (count <= max) return absl::OkStatus();
  return InvalidArgumentWithViolations(
      absl::StrCat(rpc, ": ", field, " holds ", count, " entries, more than the ", max,
                   " one request may hold; split the request"),
      {{std::string(field), absl::StrCat("at most ", max, " entries per request")}});
}

}  // namespace posthog_gateway
