#include "server/paging/request_pacer.h"

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "tests/fakes/fake_clock.h"

namespace posthog_gateway {
namespace {

using testing::FakeClock;

constexpr absl::Duration kMargin = absl::Milliseconds(500);

TEST(RequestPacerTest, AllowsABurstUpToTheLimitThenWaitsForTheOldestToLeave) {
  FakeClock clock;
  RequestPacer pacer({{3, absl::Minutes(1)}}, &clock, kMargin);
  const absl::Time start = clock.Now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start);
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Minutes(1) + kMargin);
}

TEST(RequestPacerTest, NeverAllowsMoreThanTheLimitInAnyWindow) {
  FakeClock clock;
  RequestPacer pacer({{4, absl::Minutes(1)}, {10, absl::Hours(1)}}, &clock, kMargin);
  std::vector<absl::Time> times;
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
    times.push_back(clock.Now());
    clock.Advance(absl::Seconds(1));
  }
  for (size_t i = 4; i < times.size(); ++i) EXPECT_GT(times[i] - times[i - 4], absl::Minutes(1));
  for (size_t i = 10; i < times.size(); ++i) EXPECT_GT(times[i] - times[i - 10], absl::Hours(1));
}

TEST(RequestPacerTest, AWaitBeyondTheDeadlineIsResourceExhaustedWithRetryInfo) {
  FakeClock clock;
  RequestPacer pacer({{1, absl::Minutes(1)}}, &clock, kMargin);
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  const absl::Status status = pacer.Acquire(clock.Now() + absl::Seconds(10), {});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelay(status), absl::Minutes(1) + kMargin);
  EXPECT_EQ(ErrorInfoReason(status), "UPSTREAM_RATE_LIMITED");
}

TEST(RequestPacerTest, PauseHoldsEveryRequestBack) {
  FakeClock clock;
  RequestPacer pacer({}, &clock, kMargin);
  const absl::Time start = clock.Now();
  pacer.PauseUntil(start + absl::Seconds(9));
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Seconds(9));
}

TEST(RequestPacerTest, RunSendsNothingWhenItsTurnIsAfterTheDeadline) {
  FakeClock clock;
  RequestPacer pacer({{1, absl::Minutes(1)}}, &clock, kMargin);
  int sent = 0;
  auto send = [&] {
    ++sent;
    return absl::StatusOr<int>(7);
  };
  EXPECT_EQ(*pacer.Run(absl::InfiniteFuture(), {}, send), 7);
  const absl::StatusOr<int> refused = pacer.Run(clock.Now() + absl::Seconds(10), {}, send);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(sent, 1);
}

TEST(RequestPacerTest, RunHoldsEveryRequestBackAfterPostHogs429) {
  FakeClock clock;
  RequestPacer pacer({}, &clock, kMargin);
  const absl::Time start = clock.Now();
  absl::Status throttled = absl::ResourceExhaustedError("429");
  AttachErrorInfo(throttled, "UPSTREAM_RATE_LIMITED");
  AttachRetryDelay(throttled, absl::Seconds(30));
  EXPECT_EQ(pacer.Run(absl::InfiniteFuture(), {}, [&] { return throttled; }).code(),
            absl::StatusCode::kResourceExhausted);

  // Another error does not pause; the 429 did, for the time it named.
  ASSERT_TRUE(pacer.Run(absl::InfiniteFuture(), {}, [] { return absl::OkStatus(); }).ok());
  EXPECT_EQ(clock.Now(), start + absl::Seconds(30));
  ASSERT_EQ(pacer.Run(absl::InfiniteFuture(), {}, [] { return absl::NotFoundError("no"); }).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(pacer.Run(absl::InfiniteFuture(), {}, [] { return absl::OkStatus(); }).ok());
  EXPECT_EQ(clock.Now(), start + absl::Seconds(30));
}

TEST(RequestPacerTest, CancelledWhileWaiting) {
  FakeClock clock;
  RequestPacer pacer({{1, absl::Minutes(1)}}, &clock, kMargin);
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(pacer.Acquire(absl::InfiniteFuture(), [] { return true; }).code(),
            absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace posthog_gateway
