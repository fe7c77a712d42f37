// Fuzzes the conversion of PostHog's `/api/users/@me/` body into User.

#include <cstddef>
#include <cstdint>

#include "server/users/user_json.h"
#include "tests/fuzz/json_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto json = posthog_gateway::fuzz::ParseJsonInput(data, size);
  if (!json.has_value()) return 0;
  (void)posthog_gateway::UserFromJson(*json);
  return 0;
}
