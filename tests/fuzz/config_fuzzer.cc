// Fuzzes the gateway's configuration parser (the JSON file operators write).

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)posthog_gateway::ParseConfig(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
