#ifndef TESTS_FUZZ_JSON_INPUT_H_
#define TESTS_FUZZ_JSON_INPUT_H_

// ParseJsonInput parses a fuzz input as JSON the way the gateway parses
// PostHog's answers (nlohmann::json::parse without exceptions); nullopt when
// it is not JSON. Header-only; for the fuzzers in this folder.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "nlohmann/json.hpp"

namespace posthog_gateway::fuzz {

inline std::optional<nlohmann::json> ParseJsonInput(const uint8_t* data, size_t size) {
  nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  return json;
}

}  // namespace posthog_gateway::fuzz

#endif  // TESTS_FUZZ_JSON_INPUT_H_
