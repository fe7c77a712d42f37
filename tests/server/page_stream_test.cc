#include "server/paging/page_stream.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "server/posthog/project_registry.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_list_endpoint.h"

namespace posthog_gateway {
namespace {

using test_support::FakeClock;
using test_support::FakeListEndpoint;

constexpr char kBase[] = "https://app.example/api/projects/7/persons/";

HttpResponse Answer(int code, std::string body, HttpHeaders headers = {}) {
  HttpResponse response;
  response.status_code = code;
  response.body = std::move(body);
  response.headers = std::move(headers);
  return response;
}

class PageStreamTest : public ::testing::Test {
 protected:
  void Serve(int total, std::vector<RateWindow> windows = {}) {
    config_ = test_support::DemoProjectConfig();
    http_ = std::make_unique<FakeListEndpoint>(kBase, total, &clock_);
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());
    pacer_ = std::make_unique<RequestPacer>(std::move(windows), &clock_);
  }

  std::unique_ptr<PageStream> Open(PageStreamOptions options, CallContext context = {}) {
    options.path = "/api/projects/7/persons/";
    return std::make_unique<PageStream>(*registry_->Resolve(""), std::move(options), pacer_.get(),
                                        &clock_, std::move(context));
  }

  // Drain reads the whole stream; returns the ids and the final status.
  static std::pair<std::vector<int>, absl::Status> Drain(PageStream& stream) {
    std::vector<int> ids;
    while (true) {
      absl::StatusOr<std::optional<PagedItem>> item = stream.Next();
      if (!item.ok()) return {ids, item.status()};
      if (!item->has_value()) return {ids, absl::OkStatus()};
      EXPECT_EQ((*item)->offset, (*item)->item["id"].get<int>());
      ids.push_back((*item)->item["id"].get<int>());
    }
  }

  static std::vector<int> Range(int from, int to) {
    std::vector<int> ids;
    for (int k = from; k < to; ++k) ids.push_back(k);
    return ids;
  }

  FakeClock clock_;
  GatewayConfig config_;
  std::unique_ptr<FakeListEndpoint> http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<RequestPacer> pacer_;
};

TEST_F(PageStreamTest, StreamsEveryItemInOrderAcrossConcurrentPages) {
  Serve(1050);
  PageStreamOptions options;
  options.page_size = 100;
  options.look_ahead = 3;
  std::unique_ptr<PageStream> stream = Open(options);

  std::vector<int> pages;
  int64_t last_count = 0;
  while (true) {
    absl::StatusOr<std::optional<PagedItem>> item = stream->Next();
    ASSERT_TRUE(item.ok()) << item.status();
    if (!item->has_value()) break;
    EXPECT_EQ((*item)->offset, last_count);
    EXPECT_EQ((*item)->count, last_count + 1);
    EXPECT_EQ((*item)->page, last_count / 100 + 1);
    last_count = (*item)->count;
  }
  EXPECT_EQ(last_count, 1050);
  for (const HttpRequest& request : http_->requests()) {
    EXPECT_EQ(request.url.rfind(kBase, 0), 0u) << request.url;
    EXPECT_TRUE(
        std::count(request.headers.begin(), request.headers.end(),
                   std::make_pair(std::string("Authorization"), std::string("Bearer phx_secret"))));
  }
}

TEST_F(PageStreamTest, AShortListCostsOneRequest) {
  Serve(5);
  PageStreamOptions options;
  options.look_ahead = 4;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 5));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 1u);
}

TEST_F(PageStreamTest, StopsAtMaxItemsWithoutFetchingFurther) {
  Serve(100000);
  PageStreamOptions options;
  options.page_size = 100;
  options.max_items = 150;
  options.look_ahead = 5;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 150));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 2u);
}

TEST_F(PageStreamTest, ItemReadyTellsWhetherThePageAlreadyReadHasMore) {
  Serve(250);
  PageStreamOptions options;
  options.page_size = 100;
  options.max_items = 220;
  std::unique_ptr<PageStream> stream = Open(options);
  EXPECT_FALSE(stream->ItemReady());  // Nothing read yet.
  // Count the items read in a row while ItemReady holds: one run per page.
  std::vector<int> runs;
  while (true) {
    absl::StatusOr<std::optional<PagedItem>> item = stream->Next();
    ASSERT_TRUE(item.ok()) << item.status();
    if (!item->has_value()) break;
    int run = 1;
    while (stream->ItemReady()) {
      ASSERT_TRUE(stream->Next().ok());
      ++run;
    }
    runs.push_back(run);
  }
  EXPECT_EQ(runs, (std::vector<int>{100, 100, 20}));  // max_items ends the last.
  EXPECT_FALSE(stream->ItemReady());
}

TEST_F(PageStreamTest, StartsAtTheGivenOffset) {
  Serve(260);
  PageStreamOptions options;
  options.page_size = 100;
  options.start_offset = 137;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(137, 260));
}

TEST_F(PageStreamTest, ADrfCountStopsTheLookAheadAtTheEnd) {
  Serve(250);
  http_->UseDrfPagination();
  PageStreamOptions options;
  options.page_size = 100;
  options.look_ahead = 4;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 250));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 3u);  // Not one page past the count.
}

TEST_F(PageStreamTest, ADrfCountCountsFromTheStartOffset) {
  Serve(260);
  http_->UseDrfPagination();
  PageStreamOptions options;
  options.page_size = 50;
  options.start_offset = 137;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(137, 260));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 3u);  // 137, 187, 237.
}

TEST_F(PageStreamTest, AListGrownPastItsCountStillStreamsToTheEnd) {
  Serve(250);
  http_->UseDrfPagination();
  // The first two pages still count 150 items; the list grew to 250 since.
  for (int offset : {0, 100}) {
    nlohmann::json results = nlohmann::json::array();
    for (int k = offset; k < offset + 100; ++k) results.push_back({{"id", k}});
    http_->Override(
        offset, Answer(200, nlohmann::json(
                                {{"count", 150},
                                 {"results", results},
                                 {"previous", nullptr},
                                 {"next", absl::StrCat(kBase, "?limit=100&offset=", offset + 100)}})
                                .dump()));
  }
  PageStreamOptions options;
  options.page_size = 100;
  options.look_ahead = 3;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 250));
}

TEST_F(PageStreamTest, BoundsFetchingAheadOfASlowReader) {
  Serve(1000000);
  PageStreamOptions options;
  options.page_size = 10;
  options.look_ahead = 2;
  std::unique_ptr<PageStream> stream = Open(options);
  ASSERT_TRUE(stream->Next().ok());  // The reader is on page 0 and stops reading.
  stream.reset();
  // Page 0 plus at most look_ahead + 1 pages claimed beyond it.
  EXPECT_LE(http_->requests().size(), 4u);
}

TEST_F(PageStreamTest, StopsFetchingWhenTheCallerCancels) {
  Serve(1000000);
  std::atomic<bool> cancelled{false};
  CallContext context;
  context.is_cancelled = [&] { return cancelled.load(); };
  PageStreamOptions options;
  options.page_size = 10;
  options.look_ahead = 2;
  std::unique_ptr<PageStream> stream = Open(options, context);
  ASSERT_TRUE(stream->Next().ok());
  cancelled = true;
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  // Counted once the stream is gone (its destructor waits for the fetches
  // running): a fetch that passed its cancellation check just before the
  // cancel may send its request after Next answered CANCELLED (the reader
  // stops waiting within 50 ms; a loaded machine can hold that thread longer).
  stream.reset();
  // Page 0 and the few pages the look-ahead (2) claimed around the cancel,
  // not the 100,000 pages of the list.
  EXPECT_LE(http_->requests().size(), 5u);
}

TEST_F(PageStreamTest, ALimitNearTwoToTheSixtyThreeStreamsTheWholeList) {
  Serve(250);
  http_->UseDrfPagination();  // The count ends the look-ahead: exactly 3 pages.
  CallContext context;
  context.deadline = absl::Now() + absl::Seconds(30);  // Ends a hang as a failure.
  PageStreamOptions options;
  options.page_size = 100;
  options.max_items = std::numeric_limits<int64_t>::max() - 5;
  std::unique_ptr<PageStream> stream = Open(options, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 250));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 3u);
}

TEST_F(PageStreamTest, AReaderWaitingForAPageThatNeverComesEndsWhenTheCallerCancels) {
  Serve(1000);
  http_->Hold(100);  // PostHog never answers the second page.
  std::atomic<bool> cancelled{false};
  CallContext context;
  context.is_cancelled = [&] { return cancelled.load(); };
  PageStreamOptions options;
  options.page_size = 100;
  options.look_ahead = 0;
  std::unique_ptr<PageStream> stream = Open(options, context);
  for (int k = 0; k < 100; ++k) ASSERT_TRUE(stream->Next().ok());
  cancelled = true;  // Nothing wakes the reader but its own checks.
  absl::StatusOr<std::optional<PagedItem>> next = stream->Next();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kCancelled) << next.status();
  http_->Release();
}

TEST_F(PageStreamTest, AReaderWaitingForAPageThatNeverComesEndsAtTheDeadline) {
  Serve(1000);
  http_->Hold(100);
  CallContext context;
  // Long enough for the first page to arrive before it on a loaded machine
  // (under ASan too): only the held page may meet the deadline.
  context.deadline = absl::Now() + absl::Seconds(2);
  PageStreamOptions options;
  options.page_size = 100;
  options.look_ahead = 0;
  std::unique_ptr<PageStream> stream = Open(options, context);
  for (int k = 0; k < 100; ++k) ASSERT_TRUE(stream->Next().ok());
  absl::StatusOr<std::optional<PagedItem>> next = stream->Next();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kDeadlineExceeded) << next.status();
  http_->Release();
}

TEST_F(PageStreamTest, RefusesAForeignNextUrlAfterStreamingThePage) {
  Serve(1000);
  http_->ReplaceNext(0, "https://evil.example/api/projects/7/persons/?limit=100&offset=100");
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_UNTRUSTED_NEXT_URL");
  EXPECT_TRUE(ids.empty());  // The page that named it is not trusted either.
  stream.reset();
  for (const HttpRequest& request : http_->requests()) {
    EXPECT_EQ(request.url.rfind(kBase, 0), 0u) << request.url;
  }
}

struct NextCase {
  const char* name;
  const char* next;
};

class UntrustedNextTest : public PageStreamTest, public ::testing::WithParamInterface<NextCase> {};

TEST_P(UntrustedNextTest, EndsTheStream) {
  Serve(1000);
  http_->ReplaceNext(0, GetParam().next);
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_UNTRUSTED_NEXT_URL");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, UntrustedNextTest,
    ::testing::Values(
        NextCase{"OtherScheme", "http://app.example/api/projects/7/persons/?offset=100"},
        NextCase{"OtherPort", "https://app.example:8443/api/projects/7/persons/?offset=100"},
        NextCase{"OtherPath", "https://app.example/api/projects/8/persons/?offset=100"},
        NextCase{"PathPrefixOnly", "https://app.example/api/projects/7/persons/x?offset=100"},
        NextCase{"UserInfo", "https://app.example@evil.example/api/projects/7/persons/?offset=100"},
        NextCase{"SkippedOffset", "https://app.example/api/projects/7/persons/?offset=300"},
        NextCase{"NoOffset", "https://app.example/api/projects/7/persons/?cursor=abc"}),
    [](const ::testing::TestParamInfo<NextCase>& info) { return info.param.name; });

TEST_F(PageStreamTest, AcceptsTheDefaultPortSpelledOut) {
  Serve(150);
  http_->ReplaceNext(0, "https://APP.example:443/api/projects/7/persons/?limit=100&offset=100");
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 150));
}

TEST_F(PageStreamTest, TruncatedPageIsUnavailableAfterTheItemsBeforeIt) {
  Serve(1000);
  const std::string page = R"({"results": [{"id": 100}, {"id": 101}], "next": nul)";
  http_->Override(100, Answer(200, page));
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_MALFORMED_RESPONSE");
  EXPECT_NE(status.message().find("offset 100"), absl::string_view::npos) << status;
  EXPECT_EQ(ids, Range(0, 100));
}

TEST_F(PageStreamTest, PageWithoutResultsIsUnavailable) {
  Serve(1000);
  http_->Override(0, Answer(200, R"({"detail": "hello"})"));
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_MALFORMED_RESPONSE");
}

TEST_F(PageStreamTest, TransportFailureEndsTheStreamInOrder) {
  Serve(1000);
  // A reset mid-page reaches the engine as an UNAVAILABLE transfer.
  http_->Override(200, Answer(200, R"({"results": [{"id": 2)"));
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ids, Range(0, 200));
}

const char kThrottled[] =
    R"({"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 7 seconds.","attr":null})";

TEST_F(PageStreamTest, WaitsOutA429WithRetryAfterWhenTheDeadlineAllows) {
  Serve(150);
  http_->Override(100, Answer(429, kThrottled, {{"retry-after", "3"}}));
  const absl::Time start = clock_.Now();
  CallContext context;
  context.deadline = start + absl::Seconds(30);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 150));
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(3));
}

TEST_F(PageStreamTest, WaitsOutA429WithoutRetryAfterUsingPostHogsDetail) {
  Serve(150);
  http_->Override(100, Answer(429, kThrottled));
  const absl::Time start = clock_.Now();
  CallContext context;
  context.deadline = start + absl::Seconds(30);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 150));
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(7));
}

TEST_F(PageStreamTest, A429BeyondTheDeadlineIsResourceExhaustedWithRetryInfo) {
  Serve(150);
  http_->Override(100, Answer(429, kThrottled));
  CallContext context;
  context.deadline = clock_.Now() + absl::Seconds(5);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelay(status), absl::Seconds(7));
  EXPECT_EQ(ids, Range(0, 100));
}

TEST_F(PageStreamTest, PacesRequestsUnderTheRateLimit) {
  Serve(1000, {{3, absl::Minutes(1)}});
  PageStreamOptions options;
  options.page_size = 100;
  // One fetcher: the fake clock jumps to whichever sleeper calls it, so with
  // several concurrent fetchers the elapsed fake time would depend on how
  // threads interleave, and the upper bound below would be flaky.
  options.look_ahead = 0;
  const absl::Time start = clock_.Now();
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 1000));
  // Ten pages at three a minute: three now, then three more each minute (plus
  // the pacer's margin), the tenth in the fourth minute.
  EXPECT_GE(clock_.Now() - start, absl::Minutes(3));
  EXPECT_LE(clock_.Now() - start, absl::Minutes(3) + absl::Seconds(2));
}

TEST_F(PageStreamTest, RateLimitBeyondTheDeadlineIsResourceExhausted) {
  Serve(1000, {{1, absl::Minutes(1)}});
  CallContext context;
  context.deadline = clock_.Now() + absl::Seconds(10);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(RetryDelay(status).has_value());
  EXPECT_EQ(ids, Range(0, 100));
}

TEST(SplitUrlOriginTest, NormalizesSchemeHostAndPort) {
  EXPECT_EQ(SplitUrlOrigin("HTTPS://Us.PostHog.com/api/x?y=1")->first,
            "https://us.posthog.com:443");
  EXPECT_EQ(SplitUrlOrigin("http://127.0.0.1:8010")->first, "http://127.0.0.1:8010");
  EXPECT_EQ(SplitUrlOrigin("http://127.0.0.1:8010/a?b")->second, "/a?b");
  EXPECT_FALSE(SplitUrlOrigin("ftp://x/").has_value());
  EXPECT_FALSE(SplitUrlOrigin("https://a@b/").has_value());
}

}  // namespace
}  // namespace posthog_gateway
