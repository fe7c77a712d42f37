#include "server/http/http_client.h"

#include "absl/strings/match.h"

namespace posthog_gateway {

std::optional<std::string> HttpResponse::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

}  // namespace posthog_gateway
