// The EvaluateFlags handler alone, without gRPC: FlagServiceImpl on the
// definitions bench/flags/make_seed.py writes (served to a DefinitionsStore
// by a fake HTTP client), every flag for one person per call, as
// bench/flags/grpc_load.cc asks over loopback. Separates the work around the
// evaluator (request → context, results → FlagResult messages, serializing,
// freeing) from gRPC's own per-call cost.
//
//   BENCH_FLAGS_DIR=/tmp/flagbench bazel-bin/bench/flags/flag_service_benchmark

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "google/protobuf/arena.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/flag.pb.h"
#include "server/common/clock.h"
#include "server/config/key_store.h"
#include "server/paging/resume_token.h"
#include "server/posthog/json_struct.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

std::string ReadFile(const std::string& name) {
  const char* dir = std::getenv("BENCH_FLAGS_DIR");
  std::ifstream file(absl::StrCat(dir == nullptr ? "/tmp/flagbench" : dir, "/", name));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

struct Fixture {
  GatewayConfig config;
  test_support::FakeHttpClient http;
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<ProjectRegistry> registry;
  std::unique_ptr<flags::DefinitionsStore> store;
  ResumeTokenCodec tokens = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<FlagServiceImpl> service;
  std::vector<posthog::v1::EvaluateFlagsRequest> requests;

  Fixture() {
    config = test_support::EnvKeyProjectConfig("bench");
    keys = test_support::EnvKeys(config);
    registry = std::make_unique<ProjectRegistry>(config, keys.get(), &http);
    store = std::make_unique<flags::DefinitionsStore>(*registry->Resolve("bench"), FlagsConfig());
    http.Respond(200, ReadFile("definitions.json"));
    store->PollOnce();
    service = std::make_unique<FlagServiceImpl>(
        registry.get(), std::map<std::string, FlagProject>{{"bench", {store.get(), nullptr}}},
        FlagsConfig(), PagingConfig(), &tokens, RealClock());
    const nlohmann::json inputs = nlohmann::json::parse(ReadFile("inputs.json"));
    for (int i = 0; i < 100; ++i) {
      posthog::v1::EvaluateFlagsRequest request;
      request.mutable_context()->set_distinct_id(absl::StrCat("distinct_id_", i));
      *request.mutable_context()->mutable_person_properties() =
          StructFromJson(inputs["person_properties"]);
      request.mutable_options()->set_only_local(true);
      requests.push_back(std::move(request));
    }
  }
};

const Fixture& GetFixture() {
  static const Fixture* const fixture = new Fixture();
  return *fixture;
}

grpc::ByteBuffer Serialize(const google::protobuf::MessageLite& message) {
  const std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// One call's reply, as the caller receives it.
std::string ReplyBytes(const Fixture& fixture, size_t i) {
  grpc::CallbackServerContext context;
  const grpc::ByteBuffer request = Serialize(fixture.requests[i]);
  grpc::ByteBuffer response;
  fixture.service->EvaluateFlags(&context, &request, &response);
  return Flatten(response);
}

// The handler as gRPC's callback server runs it (raw: it parses the
// request and writes the reply's bytes itself), without gRPC.
void BM_EvaluateFlagsHandler(benchmark::State& state) {
  const Fixture& fixture = GetFixture();
  posthog::v1::EvaluateFlagsResponse check;
  if (!check.ParseFromString(ReplyBytes(fixture, 0)) || check.results_size() != 50) {
    state.SkipWithError("EvaluateFlags failed: run bench/flags/make_seed.py");
    return;
  }
  std::vector<grpc::ByteBuffer> requests;
  for (const auto& request : fixture.requests) requests.push_back(Serialize(request));
  size_t i = 0;
  for (auto _ : state) {
    grpc::CallbackServerContext context;
    grpc::ByteBuffer response;
    fixture.service->EvaluateFlags(&context, &requests[i], &response);
    benchmark::DoNotOptimize(response.Length());
    if (++i == requests.size()) i = 0;
  }
}

// What the caller does with the answer: parse 50 results, free them.
void BM_ParseResponse(benchmark::State& state) {
  const std::string bytes = ReplyBytes(GetFixture(), 0);
  for (auto _ : state) {
    posthog::v1::EvaluateFlagsResponse parsed;
    benchmark::DoNotOptimize(parsed.ParseFromString(bytes));
  }
  state.counters["bytes"] = bytes.size();
}

// The same on an arena, as a tuned C++ caller parses it.
void BM_ParseResponseArena(benchmark::State& state) {
  const std::string bytes = ReplyBytes(GetFixture(), 0);
  std::vector<char> block(64 << 10);
  for (auto _ : state) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block.data();
    options.initial_block_size = block.size();
    google::protobuf::Arena arena(options);
    auto* parsed =
        google::protobuf::Arena::CreateMessage<posthog::v1::EvaluateFlagsResponse>(&arena);
    benchmark::DoNotOptimize(parsed->ParseFromString(bytes));
  }
  state.counters["bytes"] = bytes.size();
}

BENCHMARK(BM_EvaluateFlagsHandler);
BENCHMARK(BM_ParseResponse);
BENCHMARK(BM_ParseResponseArena);

}  // namespace
}  // namespace posthog_gateway

BENCHMARK_MAIN();
