// FlagService.WatchFlagDefinitions through a real (in-process) gRPC server:
// what a stream sends and when, many streams on one thread, cancellation and
// shutdown. The definitions store is polled by hand (PollOnce), so each
// change happens exactly where the test makes it.

#include <dirent.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "posthog/v1/flag.grpc.pb.h"
#include "server/config/key_store.h"
#include "server/flags/definitions_store.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/flag_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::FakeClock;
using test_support::FakeHttpClient;

// Definitions holding the flags `keys`.
std::string Definitions(const std::vector<std::string>& keys) {
  std::string flags;
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StrAppend(&flags, i == 0 ? "" : ",", R"({"id": )", i + 1, R"(, "key": ")", keys[i],
                    R"(", "active": true, "filters": {"groups": [{"rollout_percentage": 100}]}})");
  }
  return absl::StrCat(R"({"flags": [)", flags, R"(], "group_type_mapping": {}, "cohorts": {}})");
}

// The flag keys a message's definitions hold.
std::vector<std::string> Keys(const v1::WatchFlagDefinitionsResponse& message) {
  std::vector<std::string> keys;
  for (const auto& flag : message.definitions().fields().at("flags").list_value().values()) {
    keys.push_back(flag.struct_value().fields().at("key").string_value());
  }
  return keys;
}

// Threads of this process.
int Threads() {
  int threads = 0;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* entry = readdir(dir)) threads += entry->d_name[0] != '.';
    closedir(dir);
  }
  return threads;
}

// One open stream.
struct Watch {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::WatchFlagDefinitionsResponse>> reader;

  v1::WatchFlagDefinitionsResponse Next() {
    v1::WatchFlagDefinitionsResponse message;
    EXPECT_TRUE(reader->Read(&message)) << "the stream ended";
    return message;
  }
};

class WatchDefinitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = test_support::EnvKeyProjectConfig();
    keys_ = test_support::EnvKeys(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), &http_);
    options_.watch_heartbeat = absl::Hours(1);  // Tests that want heartbeats lower it.
  }

  // Start serves FlagService, its definitions loaded (`keys`).
  void Start(const std::vector<std::string>& keys) {
    http_.Respond(200, Definitions(keys), {{"etag", "\"v1\""}});
    Serve();
  }

  // Serve makes the store, polls once (what http_ answers) and serves.
  void Serve() {
    store_ = std::make_unique<flags::DefinitionsStore>(*registry_->Resolve("demo"), options_);
    store_->PollOnce();
    service_ = std::make_unique<FlagServiceImpl>(
        registry_.get(), std::map<std::string, FlagProject>{{"demo", {store_.get(), nullptr}}},
        options_, PagingConfig{}, &tokens_, &clock_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ = v1::FlagService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (server_ != nullptr) {
      service_->Shutdown();
      server_->Shutdown();
    }
  }

  std::unique_ptr<Watch> Open(const std::string& project = "") {
    auto watch = std::make_unique<Watch>();
    watch->context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::WatchFlagDefinitionsRequest request;
    request.set_project(project);
    watch->reader = stub_->WatchFlagDefinitions(&watch->context, request);
    return watch;
  }

  // Publishes new definitions holding `keys`.
  void Change(const std::vector<std::string>& keys, const std::string& etag) {
    http_.Respond(200, Definitions(keys), {{"etag", etag}});
    store_->PollOnce();
  }

  FlagsConfig options_;
  GatewayConfig config_;
  FakeHttpClient http_;
  FakeClock clock_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<flags::DefinitionsStore> store_;
  std::unique_ptr<FlagServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::FlagService::Stub> stub_;
};

TEST_F(WatchDefinitionsTest, SendsTheDefinitionsThenEachChange) {
  Start({"first"});
  std::unique_ptr<Watch> watch = Open();

  v1::WatchFlagDefinitionsResponse message = watch->Next();
  EXPECT_EQ(Keys(message), std::vector<std::string>{"first"});
  EXPECT_EQ(message.etag(), "\"v1\"");
  EXPECT_FALSE(message.stale());
  EXPECT_TRUE(message.has_fetch_time());

  Change({"first", "second"}, "\"v2\"");
  message = watch->Next();
  EXPECT_EQ(Keys(message), (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(message.etag(), "\"v2\"");
}

TEST_F(WatchDefinitionsTest, ANewStreamStartsFromTheCurrentDefinitions) {
  Start({"first"});
  std::unique_ptr<Watch> early = Open();
  ASSERT_EQ(Keys(early->Next()), std::vector<std::string>{"first"});
  early->context.TryCancel();

  // Changes the watch's thread may not have looked at yet.
  Change({"first", "second"}, "\"v2\"");
  EXPECT_EQ(Keys(Open()->Next()), (std::vector<std::string>{"first", "second"}));
  Change({"third"}, "\"v3\"");
  EXPECT_EQ(Keys(Open()->Next()), std::vector<std::string>{"third"});
}

TEST_F(WatchDefinitionsTest, AStreamOpenedBeforeAnyOtherGetsTheCurrentDefinitions) {
  Start({"first"});
  Change({"first", "second"}, "\"v2\"");
  EXPECT_EQ(Keys(Open()->Next()), (std::vector<std::string>{"first", "second"}));
}

TEST_F(WatchDefinitionsTest, HeartbeatsCarryNoDefinitions) {
  options_.watch_heartbeat = absl::Milliseconds(20);
  Start({"first"});
  std::unique_ptr<Watch> watch = Open();
  ASSERT_TRUE(watch->Next().has_definitions());

  for (int i = 0; i < 3; ++i) {
    v1::WatchFlagDefinitionsResponse heartbeat = watch->Next();
    EXPECT_FALSE(heartbeat.has_definitions());
    EXPECT_EQ(heartbeat.etag(), "\"v1\"");
  }
}

TEST_F(WatchDefinitionsTest, StalenessIsSentAtOnceWithoutTheDefinitions) {
  Start({"first"});  // Heartbeats an hour apart: only the change can send.
  std::unique_ptr<Watch> watch = Open();
  ASSERT_TRUE(watch->Next().has_definitions());

  http_.Respond(503, "");
  store_->PollOnce();
  v1::WatchFlagDefinitionsResponse message = watch->Next();
  EXPECT_FALSE(message.has_definitions());
  EXPECT_TRUE(message.stale());

  http_.Respond(304, "");
  store_->PollOnce();
  message = watch->Next();
  EXPECT_FALSE(message.has_definitions());
  EXPECT_FALSE(message.stale());
}

TEST_F(WatchDefinitionsTest, BeforeTheFirstLoadSendsAHeartbeatThenTheDefinitions) {
  http_.Respond(503, "");
  Serve();
  std::unique_ptr<Watch> watch = Open();

  v1::WatchFlagDefinitionsResponse message = watch->Next();
  EXPECT_FALSE(message.has_definitions());
  Change({"late"}, "\"v1\"");
  EXPECT_EQ(Keys(watch->Next()), std::vector<std::string>{"late"});
}

// Callers keep in-process copies, so a gateway holds a stream per replica of
// each of them: streams must not cost a thread each.
TEST_F(WatchDefinitionsTest, ManyStreamsShareOneThreadAndAllSeeEachChange) {
  Start({"first"});
  // gRPC's own threads and the watch's come up with the first stream.
  std::unique_ptr<Watch> first = Open();
  ASSERT_TRUE(first->Next().has_definitions());
  const int threads_before = Threads();

  constexpr int kStreams = 200;
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < kStreams; ++i) {
    watches.push_back(Open());
    ASSERT_EQ(Keys(watches.back()->Next()), std::vector<std::string>{"first"});
  }
  EXPECT_LT(Threads() - threads_before, 20) << "threads grew with the streams";

  Change({"first", "second"}, "\"v2\"");
  for (auto& watch : watches) {
    EXPECT_EQ(Keys(watch->Next()), (std::vector<std::string>{"first", "second"}));
  }
  EXPECT_EQ(service_->WatchStreams().at("demo"), kStreams + 1);
}

TEST_F(WatchDefinitionsTest, ACancelledStreamIsForgotten) {
  Start({"first"});
  std::unique_ptr<Watch> watch = Open();
  ASSERT_TRUE(watch->Next().has_definitions());
  ASSERT_EQ(service_->WatchStreams().at("demo"), 1);

  watch->context.TryCancel();
  v1::WatchFlagDefinitionsResponse message;
  while (watch->reader->Read(&message)) {
  }
  EXPECT_EQ(watch->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (service_->WatchStreams().at("demo") != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(service_->WatchStreams().at("demo"), 0);
}

TEST_F(WatchDefinitionsTest, ShutdownEndsStreamsAndRefusesNewOnes) {
  Start({"first"});
  std::unique_ptr<Watch> watch = Open();
  ASSERT_TRUE(watch->Next().has_definitions());

  service_->Shutdown();
  v1::WatchFlagDefinitionsResponse message;
  while (watch->reader->Read(&message)) {
  }
  grpc::Status status = watch->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "the gateway is shutting down");

  std::unique_ptr<Watch> late = Open();
  EXPECT_FALSE(late->reader->Read(&message));
  EXPECT_EQ(late->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(WatchDefinitionsTest, AnUnknownProjectIsRefused) {
  Start({"first"});
  std::unique_ptr<Watch> watch = Open("no-such-project");
  v1::WatchFlagDefinitionsResponse message;
  EXPECT_FALSE(watch->reader->Read(&message));
  EXPECT_EQ(watch->reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace posthog_gateway
