// Fuzzes the flag evaluator: compiles the input as a `/flags/definitions`
// body and evaluates every flag it holds for a context taken from the same
// input (its member "$fuzz_context": distinct_id, device_id,
// person_properties, groups, group_properties), or for a fixed one.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "server/flags/evaluator.h"
#include "tests/fuzz/json_input.h"

namespace {

using nlohmann::json;
using posthog_gateway::flags::EvaluationContext;

EvaluationContext ContextFrom(const json& body) {
  EvaluationContext context;
  context.distinct_id = "fuzz-user";
  context.person_properties = {{"email", "a@example.com"}, {"age", 30}};
  if (!body.is_object()) return context;
  const auto it = body.find("$fuzz_context");
  if (it == body.end() || !it->is_object()) return context;
  const json& given = *it;
  if (auto v = given.find("distinct_id"); v != given.end() && v->is_string()) {
    context.distinct_id = v->get<std::string>();
  }
  if (auto v = given.find("device_id"); v != given.end() && v->is_string()) {
    context.device_id = v->get<std::string>();
  }
  if (auto v = given.find("person_properties"); v != given.end() && v->is_object()) {
    context.person_properties = *v;
  }
  if (auto v = given.find("groups"); v != given.end() && v->is_object()) {
    for (const auto& [type, key] : v->items()) {
      if (key.is_string()) context.groups[type] = key.get<std::string>();
    }
  }
  if (auto v = given.find("group_properties"); v != given.end() && v->is_object()) {
    for (const auto& [type, properties] : v->items()) {
      if (properties.is_object()) context.group_properties[type] = properties;
    }
  }
  return context;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = posthog_gateway::fuzz::ParseJsonInput(data, size);
  if (!body.has_value()) return 0;
  const EvaluationContext context = ContextFrom(*body);
  const auto definitions = posthog_gateway::flags::CompileDefinitions(*std::move(body));
  if (!definitions.ok()) return 0;
  const absl::Time now = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  std::string buffer;
  for (const auto& flag : (*definitions)->flags()) {
    const posthog_gateway::flags::FlagEvaluation evaluation =
        posthog_gateway::flags::EvaluateFlag(**definitions, *flag, context, now);
    if (evaluation.decided) {
      (void)posthog_gateway::flags::ReasonDescription(evaluation, &buffer);
    }
  }
  return 0;
}
