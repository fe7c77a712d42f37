// The paging engine's cursor path (Pagination::kCursor: PostHog's groups
// list), tested like its offset path (page_stream_test.cc).

#include <atomic>
#include <memory>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "server/paging/page_stream.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/project_registry.h"
#include "tests/fakes/demo_project.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_cursor_endpoint.h"

namespace posthog_gateway {
namespace {

using test_support::FakeClock;
using test_support::FakeCursorEndpoint;

constexpr char kBase[] = "https://app.example/api/projects/7/groups/";

HttpResponse Answer(int code, std::string body, HttpHeaders headers = {}) {
  HttpResponse response;
  response.status_code = code;
  response.body = std::move(body);
  response.headers = std::move(headers);
  return response;
}

class CursorPageStreamTest : public ::testing::Test {
 protected:
  void Serve(int total, std::vector<RateWindow> windows = {}) {
    config_ = test_support::DemoProjectConfig();
    http_ = std::make_unique<FakeCursorEndpoint>(kBase, total);
    keys_ = std::make_unique<KeyStore>(config_);
    registry_ = std::make_unique<ProjectRegistry>(config_, keys_.get(), http_.get());
    pacer_ = std::make_unique<RequestPacer>(std::move(windows), &clock_);
  }

  std::unique_ptr<PageStream> Open(PageStreamOptions options, CallContext context = {}) {
    options.path = "/api/projects/7/groups/";
    options.query = "group_type_index=0";
    options.pagination = Pagination::kCursor;
    return std::make_unique<PageStream>(*registry_->Resolve(""), std::move(options), pacer_.get(),
                                        &clock_, std::move(context));
  }

  static std::pair<std::vector<int>, absl::Status> Drain(PageStream& stream) {
    std::vector<int> ids;
    while (true) {
      absl::StatusOr<std::optional<PagedItem>> item = stream.Next();
      if (!item.ok()) return {ids, item.status()};
      if (!item->has_value()) return {ids, absl::OkStatus()};
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
  std::unique_ptr<FakeCursorEndpoint> http_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<ProjectRegistry> registry_;
  std::unique_ptr<RequestPacer> pacer_;
};

TEST_F(CursorPageStreamTest, FollowsEveryCursorInOrderOnePageAtATime) {
  Serve(1050);
  PageStreamOptions options;
  options.look_ahead = 3;  // A cursor list never has more than one page in flight.
  std::unique_ptr<PageStream> stream = Open(options);
  std::vector<int> ids;
  int64_t count = 0;
  while (true) {
    absl::StatusOr<std::optional<PagedItem>> item = stream->Next();
    ASSERT_TRUE(item.ok()) << item.status();
    if (!item->has_value()) break;
    const PagedItem& paged = **item;
    EXPECT_EQ(paged.count, ++count);
    EXPECT_EQ(paged.page, static_cast<int>(ids.size() / 100) + 1);
    EXPECT_EQ(paged.position, static_cast<int64_t>(ids.size() % 100));
    EXPECT_EQ(paged.page_cursor,
              ids.size() < 100
                  ? ""
                  : FakeCursorEndpoint::CursorAfter(static_cast<int>(ids.size() / 100 * 100 - 1)));
    ids.push_back(paged.item["id"].get<int>());
  }
  EXPECT_EQ(ids, Range(0, 1050));
  stream.reset();
  const std::vector<HttpRequest> requests = http_->requests();
  ASSERT_EQ(requests.size(), 11u);
  EXPECT_EQ(requests[0].url, std::string(kBase) + "?group_type_index=0");
  // The request is built from the configured path and filters, the cursor
  // re-encoded; no limit or offset.
  EXPECT_EQ(requests[1].url, std::string(kBase) + "?group_type_index=0&cursor=p%2B99%2F%3D%3D");
  for (const HttpRequest& request : requests) {
    EXPECT_FALSE(absl::StrContains(request.url, "offset=")) << request.url;
    EXPECT_FALSE(absl::StrContains(request.url, "limit=")) << request.url;
  }
  EXPECT_EQ(http_->max_in_flight(), 1);
}

TEST_F(CursorPageStreamTest, FetchesExactlyOnePageAheadOfASlowReader) {
  Serve(100000);
  PageStreamOptions options;
  options.look_ahead = 3;
  std::unique_ptr<PageStream> stream = Open(options);
  ASSERT_TRUE(stream->Next().ok());  // The reader is on page 1 and stops reading.
  // Page 2 is fetched while page 1 is read (at most 10 s: a fetch thread
  // may wait seconds for a core on a loaded machine)...
  for (int i = 0; i < 2000 && http_->requests().size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(http_->requests().size(), 2u);
  absl::SleepFor(absl::Milliseconds(50));
  stream.reset();
  // ...and nothing beyond it.
  EXPECT_EQ(http_->requests().size(), 2u);
}

TEST_F(CursorPageStreamTest, WithoutLookAheadFetchesOnlyWhatTheReaderWaitsFor) {
  Serve(1000);
  PageStreamOptions options;
  options.look_ahead = 0;
  std::unique_ptr<PageStream> stream = Open(options);
  ASSERT_TRUE(stream->Next().ok());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(http_->requests().size(), 1u);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids.size(), 999u);
}

TEST_F(CursorPageStreamTest, AShortListCostsOneRequest) {
  Serve(5);
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 5));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 1u);
}

TEST_F(CursorPageStreamTest, StopsAtMaxItemsWithoutFetchingFurther) {
  Serve(100000);
  PageStreamOptions options;
  options.max_items = 150;
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 150));
  stream.reset();
  EXPECT_EQ(http_->requests().size(), 2u);
}

TEST_F(CursorPageStreamTest, ALimitNearTwoToTheSixtyThreeStreamsTheWholeList) {
  Serve(250);
  CallContext context;
  context.deadline = absl::Now() + absl::Seconds(30);
  PageStreamOptions options;
  options.max_items = std::numeric_limits<int64_t>::max() - 5;
  std::unique_ptr<PageStream> stream = Open(options, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 250));
  EXPECT_EQ(http_->requests().size(), 3u);
}

TEST_F(CursorPageStreamTest, ResumesAtACursorSkippingTheItemsAlreadyStreamed) {
  Serve(1000);
  PageStreamOptions options;
  options.start_cursor = FakeCursorEndpoint::CursorAfter(199);
  options.start_skip = 37;
  std::unique_ptr<PageStream> stream = Open(options);
  absl::StatusOr<std::optional<PagedItem>> first = stream->Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((**first).item["id"], 237);
  EXPECT_EQ((**first).position, 37);
  EXPECT_EQ((**first).page_cursor, FakeCursorEndpoint::CursorAfter(199));
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(238, 1000));
}

TEST_F(CursorPageStreamTest, AResumedFirstPageIsPlacedByItsLastItemDespiteInserts) {
  Serve(1000);
  http_->Insert(3);  // Three groups created since the token was made.
  PageStreamOptions options;
  options.start_skip = 10;  // Items 0..9 streamed; the first page shifted by 3.
  options.item_id = [](const nlohmann::json& item) { return item["group_key"].get<std::string>(); };
  options.start_after_id = "g9";
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(10, 1000));
}

TEST_F(CursorPageStreamTest, GroupsInsertedWhileListingAreNeitherRepeatedNorShiftAnything) {
  Serve(1000);
  std::unique_ptr<PageStream> stream = Open({});
  std::vector<int> ids;
  while (true) {
    absl::StatusOr<std::optional<PagedItem>> item = stream->Next();
    ASSERT_TRUE(item.ok()) << item.status();
    if (!item->has_value()) break;
    ids.push_back((**item).item["id"].get<int>());
    if (ids.size() % 50 == 0) http_->Insert(7);
  }
  EXPECT_EQ(ids, Range(0, 1000));
}

TEST_F(CursorPageStreamTest, RefusesAForeignNextUrlAfterStreamingThePage) {
  Serve(1000);
  http_->ReplaceNext("", "https://evil.example/api/projects/7/groups/?cursor=abc");
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_UNTRUSTED_NEXT_URL");
  EXPECT_TRUE(ids.empty());  // The page that named it is not trusted either.
  EXPECT_EQ(http_->requests().size(), 1u);
}

class UntrustedCursorNextTest : public CursorPageStreamTest,
                                public ::testing::WithParamInterface<std::string> {};

TEST_P(UntrustedCursorNextTest, EndsTheStream) {
  Serve(1000);
  http_->ReplaceNext("", GetParam());
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << GetParam();
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_UNTRUSTED_NEXT_URL") << GetParam();
  EXPECT_EQ(http_->requests().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Nexts, UntrustedCursorNextTest,
    ::testing::Values(
        "http://app.example/api/projects/7/groups/?cursor=abc",           // Scheme.
        "https://app.example:8443/api/projects/7/groups/?cursor=abc",     // Port.
        "https://app.example/api/projects/8/groups/?cursor=abc",          // Project.
        "https://app.example/api/projects/7/persons/?cursor=abc",         // Endpoint.
        "https://app.example/api/projects/7/groups/",                     // No cursor.
        "https://app.example/api/projects/7/groups/?cursor=",             // Empty cursor.
        "https://app.example/api/projects/7/groups/?cursor=%zz",          // Bad escape.
        "https://user@app.example/api/projects/7/groups/?cursor=abc",     // Credentials.
        "https://app.example/api/projects/7/groups/?group_type_index=0",  // Same page.
        "/api/projects/7/groups/?cursor=abc"));                           // Relative.

TEST_F(CursorPageStreamTest, ANextRepeatingItsOwnCursorIsRefused) {
  Serve(1000);
  const std::string cursor = FakeCursorEndpoint::CursorAfter(99);
  http_->ReplaceNext(cursor, std::string(kBase) + "?cursor=" + FakeCursorEndpoint::Encode(cursor));
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_UNTRUSTED_NEXT_URL");
  EXPECT_EQ(ids, Range(0, 100));
}

TEST_F(CursorPageStreamTest, AnOverlongCursorIsRefused) {
  Serve(1000);
  http_->ReplaceNext(
      "", std::string(kBase) + "?cursor=" + std::string(kMaxUpstreamCursorBytes + 1, 'a'));
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_UNTRUSTED_NEXT_URL");
}

TEST_F(CursorPageStreamTest, TruncatedPageIsUnavailableAfterTheItemsBeforeIt) {
  Serve(1000);
  http_->Override(FakeCursorEndpoint::CursorAfter(99),
                  Answer(200, R"({"results": [{"id": 100}, {"id": 101}], "next": nul)"));
  std::unique_ptr<PageStream> stream = Open({});
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_MALFORMED_RESPONSE");
  EXPECT_NE(status.message().find("page 2"), absl::string_view::npos) << status;
  EXPECT_EQ(ids, Range(0, 100));
}

TEST_F(CursorPageStreamTest, AnInvalidCursorIsPostHogsNotFound) {
  Serve(1000);
  PageStreamOptions options;
  options.start_cursor = "forged";
  std::unique_ptr<PageStream> stream = Open(options);
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_TRUE(ids.empty());
}

const char kThrottled[] =
    R"({"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 7 seconds.","attr":null})";

TEST_F(CursorPageStreamTest, WaitsOutA429WhenTheDeadlineAllows) {
  Serve(150);
  http_->Override(FakeCursorEndpoint::CursorAfter(99),
                  Answer(429, kThrottled, {{"retry-after", "3"}}));
  const absl::Time start = clock_.Now();
  CallContext context;
  context.deadline = start + absl::Seconds(30);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 150));
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(3));
  EXPECT_EQ(http_->requests().size(), 3u);
}

TEST_F(CursorPageStreamTest, A429BeyondTheDeadlineIsResourceExhaustedWithRetryInfo) {
  Serve(150);
  http_->Override(FakeCursorEndpoint::CursorAfter(99), Answer(429, kThrottled));
  CallContext context;
  context.deadline = clock_.Now() + absl::Seconds(5);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelay(status), absl::Seconds(7));
  EXPECT_EQ(ids, Range(0, 100));
}

TEST_F(CursorPageStreamTest, PacesRequestsUnderTheRateLimit) {
  Serve(1000, {{3, absl::Minutes(1)}});
  const absl::Time start = clock_.Now();
  CallContext context;
  context.deadline = start + absl::Minutes(10);
  std::unique_ptr<PageStream> stream = Open({}, context);
  auto [ids, status] = Drain(*stream);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(ids, Range(0, 1000));
  // 10 pages at 3 a minute: the last one starts three minutes in.
  EXPECT_GE(clock_.Now() - start, absl::Minutes(3));
}

TEST_F(CursorPageStreamTest, AReaderWaitingForAPageThatNeverComesEndsWhenTheCallerCancels) {
  Serve(1000);
  http_->Hold(FakeCursorEndpoint::CursorAfter(99));
  std::atomic<bool> cancelled{false};
  CallContext context;
  context.is_cancelled = [&] { return cancelled.load(); };
  std::unique_ptr<PageStream> stream = Open({}, context);
  for (int k = 0; k < 100; ++k) ASSERT_TRUE(stream->Next().ok());
  cancelled = true;
  absl::StatusOr<std::optional<PagedItem>> next = stream->Next();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kCancelled) << next.status();
  http_->Release();
}

TEST_F(CursorPageStreamTest, AReaderWaitingForAPageThatNeverComesEndsAtTheDeadline) {
  Serve(1000);
  http_->Hold(FakeCursorEndpoint::CursorAfter(99));
  CallContext context;
  // Long enough for the first page to arrive before it on a loaded machine
  // (under ASan too): only the held page may meet the deadline.
  context.deadline = absl::Now() + absl::Seconds(2);
  std::unique_ptr<PageStream> stream = Open({}, context);
  for (int k = 0; k < 100; ++k) ASSERT_TRUE(stream->Next().ok());
  absl::StatusOr<std::optional<PagedItem>> next = stream->Next();
  EXPECT_EQ(next.status().code(), absl::StatusCode::kDeadlineExceeded) << next.status();
  http_->Release();
}

}  // namespace
}  // namespace posthog_gateway
