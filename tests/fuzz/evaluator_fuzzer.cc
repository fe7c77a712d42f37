// Fuzzes the flag evaluator: compiles the input as a `/flags/definitions`
// body and evaluates every flag it holds for a context taken from the same
// input (its member "$fuzz_context": distinct_id, device_id,
// person_properties, groups, group_properties), or for a fixed one.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "posthog/v1/flag.pb.h"
#include "server/flags/evaluator.h"
#include "server/posthog/json_struct.h"
#include "server/service/flag_results.h"
#include "server/service/struct_properties.h"
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

// The generated code's bytes for `message`, map fields in key order.
std::string Deterministic(const google::protobuf::MessageLite& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
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
  // The decided results as an EvaluateFlags reply, written from the bytes
  // the definitions pre-encode: each must parse as the message the
  // generated code builds for it (a flag key once: duplicates are left out).
  posthog_gateway::FlagResults results;
  std::set<std::string> keys;
  // The same person's properties as EvaluateFlags reads them: from a
  // Struct, one key at a time (with a cache, as the service evaluates),
  // which must decide as the JSON of that Struct does.
  const google::protobuf::Struct person =
      posthog_gateway::StructFromJson(context.person_properties);
  const posthog_gateway::StructProperties lookup(&person);
  EvaluationContext from_struct = context;
  from_struct.person_lookup = &lookup;
  EvaluationContext from_json = context;
  from_json.person_properties = posthog_gateway::JsonFromStruct(person);
  posthog_gateway::flags::EvaluationCache cache;
  for (const auto& flag : (*definitions)->flags()) {
    const posthog_gateway::flags::FlagEvaluation evaluation =
        posthog_gateway::flags::EvaluateFlag(**definitions, *flag, context, now);
    const posthog_gateway::flags::FlagEvaluation want =
        posthog_gateway::flags::EvaluateFlag(**definitions, *flag, from_json, now);
    const posthog_gateway::flags::FlagEvaluation got =
        posthog_gateway::flags::EvaluateFlag(**definitions, *flag, from_struct, now, &cache);
    if (got.decided != want.decided || got.enabled != want.enabled || got.variant != want.variant ||
        got.reason != want.reason || got.condition_index != want.condition_index ||
        got.inconclusive_reason != want.inconclusive_reason) {
      std::abort();
    }
    if (evaluation.decided) {
      (void)posthog_gateway::flags::ReasonDescription(evaluation, &buffer);
      const std::string& key = posthog_gateway::flags::CompiledDefinitions::FlagKey(*flag);
      if (keys.insert(key).second) results.SetLocalBorrowed(key, evaluation);
    }
  }
  posthog::v1::EvaluateFlagsResponse reply;
  if (!reply.ParseFromString(results.EncodeResponse("request"))) std::abort();
  if (reply.results_size() != static_cast<int>(results.size())) std::abort();
  for (size_t i = 0; i < results.size(); ++i) {
    auto found = reply.results().find(results.key(i));
    if (found == reply.results().end() ||
        Deterministic(found->second) != Deterministic(results.ToProto(i))) {
      std::abort();
    }
  }
  return 0;
}
