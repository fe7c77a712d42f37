// Fuzzes the conversion of PostHog's person JSON (a list item or a retrieved
// person) into Person.

#include <cstddef>
#include <cstdint>

#include "server/persons/persons.h"
#include "tests/fuzz/json_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto json = posthog_gateway::fuzz::ParseJsonInput(data, size);
  if (!json.has_value()) return 0;
  (void)posthog_gateway::PersonFromJson(*json);
  return 0;
}
