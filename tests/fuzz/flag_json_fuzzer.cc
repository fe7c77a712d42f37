// Fuzzes the conversion of PostHog's feature flag JSON into Flag, and back:
// whatever FlagFromJson accepts, JsonFromFlag must turn into JSON that
// FlagFromJson accepts again.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "server/flags/flag_json.h"
#include "tests/fuzz/json_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto json = posthog_gateway::fuzz::ParseJsonInput(data, size);
  if (!json.has_value()) return 0;
  const auto flag = posthog_gateway::flags::FlagFromJson(*json);
  if (!flag.ok()) return 0;
  const nlohmann::json again = posthog_gateway::flags::JsonFromFlag(*flag);
  (void)again.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!posthog_gateway::flags::FlagFromJson(again).ok()) std::abort();
  return 0;
}
