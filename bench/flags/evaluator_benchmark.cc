// The gateway's local evaluator alone: nanoseconds per evaluation of one flag
// for one person, on the definitions bench/flags/make_seed.py writes (the
// same ones posthog-node evaluates in node_local_eval.js).
//
//   BENCH_FLAGS_DIR=/tmp/flagbench bazel-bin/bench/flags/evaluator_benchmark
//
// bench/flags/run.sh builds it with --config=opt and prints it side by side
// with posthog-node.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "nlohmann/json.hpp"
#include "server/flags/evaluator.h"

namespace posthog_gateway::flags {
namespace {

nlohmann::json ReadJson(const std::string& name) {
  const char* dir = std::getenv("BENCH_FLAGS_DIR");
  std::ifstream file(absl::StrCat(dir == nullptr ? "/tmp/flagbench" : dir, "/", name));
  std::stringstream text;
  text << file.rdbuf();
  return nlohmann::json::parse(text.str());
}

struct Fixture {
  std::shared_ptr<const CompiledDefinitions> definitions;
  std::vector<EvaluationContext> contexts;
  absl::Time now = absl::Now();

  Fixture() {
    definitions = *CompileDefinitions(ReadJson("definitions.json"));
    const nlohmann::json inputs = ReadJson("inputs.json");
    for (int i = 0; i < 1000; ++i) {
      EvaluationContext context;
      context.distinct_id = absl::StrCat("distinct_id_", i);
      context.person_properties = inputs["person_properties"];
      contexts.push_back(std::move(context));
    }
  }
};

const Fixture& GetFixture() {
  static const Fixture* const fixture = new Fixture();
  return *fixture;
}

void EvaluateOne(benchmark::State& state, const char* key) {
  const Fixture& fixture = GetFixture();
  const CompiledFlag* flag = fixture.definitions->Find(key);
  if (flag == nullptr) {
    state.SkipWithError("flag missing: run bench/flags/make_seed.py");
    return;
  }
  size_t i = 0;
  int64_t decided = 0;
  for (auto _ : state) {
    FlagEvaluation result =
        EvaluateFlag(*fixture.definitions, *flag, fixture.contexts[i], fixture.now);
    decided += result.decided;
    benchmark::DoNotOptimize(result);
    if (++i == fixture.contexts.size()) i = 0;
  }
  if (decided != state.iterations()) state.SkipWithError("some evaluations were inconclusive");
}

void BM_PlainRollout(benchmark::State& state) { EvaluateOne(state, "bench-rollout"); }
void BM_Multivariate(benchmark::State& state) { EvaluateOne(state, "bench-multivariate"); }
void BM_TenProperties(benchmark::State& state) { EvaluateOne(state, "bench-ten-properties"); }
void BM_NestedCohort(benchmark::State& state) { EvaluateOne(state, "bench-nested-cohort"); }

// All 50 flags for one person, as EvaluateFlags does before any I/O: with
// one EvaluationCache per person, or (`cached` false) without.
void FiftyFlags(benchmark::State& state, bool cached) {
  const Fixture& fixture = GetFixture();
  size_t i = 0;
  for (auto _ : state) {
    EvaluationCache cache;
    for (const auto& flag : fixture.definitions->flags()) {
      benchmark::DoNotOptimize(EvaluateFlag(*fixture.definitions, *flag, fixture.contexts[i],
                                            fixture.now, cached ? &cache : nullptr));
    }
    if (++i == fixture.contexts.size()) i = 0;
  }
}

void BM_FiftyFlags(benchmark::State& state) { FiftyFlags(state, true); }
void BM_FiftyFlagsWithoutCache(benchmark::State& state) { FiftyFlags(state, false); }

BENCHMARK(BM_PlainRollout);
BENCHMARK(BM_Multivariate);
BENCHMARK(BM_TenProperties);
BENCHMARK(BM_NestedCohort);
BENCHMARK(BM_FiftyFlags);
BENCHMARK(BM_FiftyFlagsWithoutCache);

}  // namespace
}  // namespace posthog_gateway::flags

BENCHMARK_MAIN();
