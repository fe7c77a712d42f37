// What open list streams cost the gateway, through the real gRPC server
// (GatewayServer on loopback TCP, so HTTP/2 flow control is real) and the
// real PersonService over a fake PostHog persons list (issue 13, "Threads"):
// - 100 ListPersons streams nobody reads cost a handler thread each and no
//   fetcher threads of their own (the list pages are fetched on the shared
//   FetchPool); they used to cost 1 + 1 + look_ahead threads each (534);
// - a reader who reads nothing holds the fetching to the look-ahead;
// - server.max_streams and server.max_streams_per_caller refuse the stream
//   past them with RESOURCE_EXHAUSTED and STREAM_LIMIT_REACHED;
// - server.max_handler_threads (a grpc::ResourceQuota) refuses calls past it
//   with RESOURCE_EXHAUSTED and the process goes on;
// - a thread the system refuses is an error answer, never std::terminate.

#include <sys/resource.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "posthog/v1/person.grpc.pb.h"
#include "server/authz/authorizer.h"
#include "server/common/clock.h"
#include "server/config/key_store.h"
#include "server/grpc/blocking_calls.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/stream_limits.h"
#include "server/http/http_client.h"
#include "server/paging/fetch_pool.h"
#include "server/paging/page_stream.h"
#include "server/paging/resume_token.h"
#include "server/posthog/project_registry.h"
#include "server/service/person_service.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/grpc_status_details.h"

namespace posthog_gateway {
namespace {

namespace v1 = ::posthog::v1;
using test_support::ErrorReason;

constexpr char kPersons[] = "https://app.example/api/projects/7/persons/";
constexpr int kLookAhead = 3;
constexpr int kFetchThreads = 4;

// An endless PostHog persons list: every page is full and has a `next`.
// Each person carries `padding` bytes of properties.
class EndlessPersons final : public HttpClient {
 public:
  explicit EndlessPersons(int padding) : padding_(padding, 'x') {}

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    int limit = 100;
    int64_t offset = 0;
    const size_t question = request.url.find('?');
    if (question != std::string::npos) {
      for (absl::string_view pair :
           absl::StrSplit(absl::string_view(request.url).substr(question + 1), '&')) {
        std::pair<std::string, std::string> kv = absl::StrSplit(pair, '=');
        if (kv.first == "limit") (void)absl::SimpleAtoi(kv.second, &limit);
        if (kv.first == "offset") (void)absl::SimpleAtoi(kv.second, &offset);
      }
    }
    {
      absl::MutexLock lock(&mu_);
      ++requests_;
    }
    nlohmann::json results = nlohmann::json::array();
    for (int64_t k = offset; k < offset + limit; ++k) {
      results.push_back({{"uuid", absl::StrFormat("01908d6b-0000-7000-8000-%012d", k)},
                         {"distinct_ids", {absl::StrCat("user-", k)}},
                         {"properties", {{"padding", padding_}}}});
    }
    HttpResponse response;
    response.status_code = 200;
    response.body =
        nlohmann::json{
            {"results", results},
            {"next", absl::StrCat(kPersons, "?limit=", limit, "&offset=", offset + limit)}}
            .dump();
    return response;
  }

  int64_t requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  const std::string padding_;
  mutable absl::Mutex mu_;
  int64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
};

int Threads() {
  int count = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

// Polls `value` until it stayed the same for half a second (at most 20 s):
// what the gateway does in the background has settled.
template <typename F>
int64_t Settled(F value) {
  int64_t last = value();
  int same = 0;
  for (int i = 0; i < 200 && same < 5; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    const int64_t now = value();
    same = now == last ? same + 1 : 0;
    last = now;
  }
  return last;
}

class StreamResourcesTest : public ::testing::Test {
 protected:
  // Starts the gateway's PersonService on loopback with `server` limits.
  void Start(ServerConfig server = {}, int padding = 200, GatewayConfig config = {},
             grpc::ChannelArguments client_args = {}) {
    config_ = config.projects.empty() ? test_support::DemoProjectConfig() : std::move(config);
    config_.server = server;
    config_.authorization.development_mode = true;  // Callers named, every call allowed.
    http_ = std::make_unique<EndlessPersons>(padding);
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());
    absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
        Authorizer::Create(config_, nullptr, RealClock());
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
    PagingConfig paging;
    paging.persons_per_minute = 0;  // No pacing: only the look-ahead holds fetching.
    paging.persons_per_hour = 0;
    paging.look_ahead = kLookAhead;
    pool_ = std::make_unique<FetchPool>(kFetchThreads);
    limits_ = std::make_unique<StreamLimits>(server.max_streams, server.max_streams_per_caller);
    persons_ =
        std::make_unique<PersonServiceImpl>(registry_.get(), paging, &tokens_, RealClock(), nullptr,
                                            authorizer_.get(), pool_.get(), limits_.get());
    server_ = std::make_unique<GatewayServer>(
        server, std::vector<NamedService>{{"posthog.v1.PersonService", persons_.get()}});
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = v1::PersonService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials(), client_args));
  }

  void TearDown() override {
    for (auto& context : contexts_) context->TryCancel();
    readers_.clear();
    contexts_.clear();
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration(), absl::Seconds(5));
  }

  // Open starts a ListPersons stream (as `caller`, a Linkerd identity, when
  // given) and keeps it open without reading it.
  grpc::ClientReader<v1::ListPersonsResponse>* Open(const std::string& caller = "") {
    contexts_.push_back(std::make_unique<grpc::ClientContext>());
    if (!caller.empty()) contexts_.back()->AddMetadata("l5d-client-id", caller);
    v1::ListPersonsRequest request;
    request.set_page_size(100);
    readers_.push_back(stub_->ListPersons(contexts_.back().get(), request));
    return readers_.back().get();
  }

  // Outcome reads the first message of the last stream opened: OK when the
  // gateway streams it, else the status that ended it.
  grpc::Status Outcome(grpc::ClientReader<v1::ListPersonsResponse>* reader) {
    v1::ListPersonsResponse response;
    if (reader->Read(&response)) return grpc::Status::OK;
    return reader->Finish();
  }

  GatewayConfig config_;
  std::unique_ptr<EndlessPersons> http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<Authorizer> authorizer_;
  ResumeTokenCodec tokens_ = ResumeTokenCodec::WithRandomSecret(absl::Hours(1));
  std::unique_ptr<FetchPool> pool_;
  std::unique_ptr<StreamLimits> limits_;
  std::unique_ptr<PersonServiceImpl> persons_;
  std::unique_ptr<GatewayServer> server_;
  std::unique_ptr<v1::PersonService::Stub> stub_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ListPersonsResponse>>> readers_;
};

TEST_F(StreamResourcesTest, HundredUnreadListsCostAHandlerThreadEachAndNoFetcherThreads) {
  Start();
  const int before = static_cast<int>(Settled(Threads));
  constexpr int kStreams = 100;
  for (int i = 0; i < kStreams; ++i) Open();
  // Every stream fetched its first page: every handler runs.
  for (int i = 0; i < 200 && http_->requests() < kStreams; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE(http_->requests(), kStreams);
  const int after = static_cast<int>(Settled(Threads));
  const int added = after - before;
  std::cout << "threads: " << before << " before, " << after << " with " << kStreams
            << " unread ListPersons streams (+" << added << ")" << std::endl;
  // A handler thread per stream, gRPC's own few, no fetcher per stream
  // (1 + look_ahead each, 400 more, before the shared pool).
  EXPECT_LE(added, kStreams + 40);
}

TEST_F(StreamResourcesTest, AReaderWhoReadsNothingCausesAtMostLookAheadPagesToBeFetched) {
  // Pages of 100 persons of ~1 KiB: a page is a ~100 KiB message, more than
  // the caller's 64 KiB HTTP/2 stream window (BDP probing off: gRPC's
  // default caller grows the window to a few MiB and takes that many bytes
  // of pages into its own buffer, docs/lists.md). The first page fills the
  // window; the gateway then holds it and look_ahead more, and fetches no
  // further (before the shared pool: look_ahead + 1 more).
  grpc::ChannelArguments small_window;
  small_window.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  Start({}, /*padding=*/1000, {}, small_window);
  Open();
  const int64_t fetched = Settled([this] { return http_->requests(); });
  std::cout << "pages fetched for a reader who reads nothing: " << fetched << std::endl;
  EXPECT_LE(fetched, 1 + kLookAhead);
}

TEST_F(StreamResourcesTest, StreamsPastServerMaxStreamsAreResourceExhaustedWithDetails) {
  ServerConfig server;
  server.max_streams = 5;
  server.max_streams_per_caller = 0;
  Start(server);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Outcome(Open()).ok()) << i;
  grpc::Status refused = Outcome(Open());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(ErrorReason(refused), "STREAM_LIMIT_REACHED");
  EXPECT_NE(refused.error_message().find("server.max_streams"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(limits_->open(), 5);
  // A stream that ends gives its place back.
  contexts_.front()->TryCancel();
  for (int i = 0; i < 100 && limits_->open() == 5; ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(Outcome(Open()).ok());
}

TEST_F(StreamResourcesTest, StreamsPastTheCallersCapAreRefusedWhileOthersStillStream) {
  GatewayConfig config = test_support::DemoProjectConfig();
  ServerConfig server;
  server.caller_identity = CallerIdentitySource::kLinkerd;
  server.max_streams = 100;
  server.max_streams_per_caller = 3;
  Start(server, 200, config);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Outcome(Open("batch.jobs")).ok()) << i;
  grpc::Status refused = Outcome(Open("batch.jobs"));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(ErrorReason(refused), "STREAM_LIMIT_REACHED");
  EXPECT_NE(refused.error_message().find("server.max_streams_per_caller"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("batch.jobs"), std::string::npos);
  EXPECT_TRUE(Outcome(Open("web.frontend")).ok());
  EXPECT_EQ(limits_->open("batch.jobs"), 3);
}

TEST_F(StreamResourcesTest, HandlerThreadsPastTheQuotaAreResourceExhausted) {
  ServerConfig server;
  server.max_streams = 0;
  server.max_streams_per_caller = 0;
  server.max_handler_threads = 16;
  Start(server);
  int accepted = 0;
  int exhausted = 0;
  for (int i = 0; i < 40; ++i) {
    grpc::Status status = Outcome(Open());
    if (status.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << status.error_message();
      ++exhausted;
    }
  }
  std::cout << accepted << " streams served, " << exhausted << " refused" << std::endl;
  EXPECT_LE(accepted, 16);
  EXPECT_GT(exhausted, 0);
}

// Runs `body` in a child process whose address space is capped at what it
// uses now plus `spare` bytes, so that the next thread stacks cannot be
// mapped (as root RLIMIT_NPROC is not enforced; this is per process and
// works for any user). The child exits 0 when `body` returns true.
bool CapAddressSpace(int64_t spare) {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  statm >> pages;
  rlimit cap;
  cap.rlim_cur = cap.rlim_max = static_cast<rlim_t>(pages * 4096 + spare);
  return pages > 0 && setrlimit(RLIMIT_AS, &cap) == 0;
}

template <typename F>
void WithFewThreadsLeft(int64_t spare, F body) {
  EXPECT_EXIT(
      {
        if (!CapAddressSpace(spare)) _exit(3);
        _exit(body() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "ASan's shadow memory needs an unbounded address space"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "ASan's shadow memory needs an unbounded address space"
#endif
#endif
#ifndef SKIP_UNDER_ASAN
#define SKIP_UNDER_ASAN() (void)0
#endif

TEST(ThreadStartFailureDeathTest, BlockingCallsRefuseACallTheSystemGivesNoThread) {
  SKIP_UNDER_ASAN();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  WithFewThreadsLeft(64 << 20, [] {
    BlockingCalls calls;
    absl::Notification release;
    int refused = 0;
    for (int i = 0; i < 200; ++i) {
      absl::AnyInvocable<void()&&> call = [&release] { release.WaitForNotification(); };
      if (!calls.TryStart(call)) {
        ++refused;
        if (!call) return false;  // A refused call is left to the caller.
      }
    }
    release.Notify();
    return refused > 0;
  });
}

TEST(ThreadStartFailureDeathTest, APoolWithoutThreadsEndsTheListWithResourceExhausted) {
  SKIP_UNDER_ASAN();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  WithFewThreadsLeft(0, [] {
    FetchPool pool(8);
    if (pool.threads() != 0) return true;  // The system still had room: nothing to show.
    GatewayConfig config = test_support::DemoProjectConfig();
    EndlessPersons http(10);
    KeyStore keys(config);
    ProjectRegistry registry(config, &keys, &http);
    RequestPacer pacer({}, RealClock());
    PageStreamOptions options;
    options.path = "/api/projects/7/persons/";
    PageStream stream(*registry.Resolve(""), options, &pacer, RealClock(), CallContext{}, &pool);
    absl::StatusOr<std::optional<PagedItem>> next = stream.Next();
    return next.status().code() == absl::StatusCode::kResourceExhausted;
  });
}

}  // namespace
}  // namespace posthog_gateway
