#include "server/paging/request_pacer.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/common/error_details.h"
#include "tests/fakes/fake_clock.h"

namespace posthog_gateway {
namespace {

using test_support::FakeClock;

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

// A fleet's shared budget on the fake clock: one sliding log for every
// pacer given it, like the Redis script; can be made unreachable.
class FakeSharedBudget final : public SharedBudget {
 public:
  explicit FakeSharedBudget(FakeClock* clock) : clock_(clock) {}

  absl::StatusOr<absl::Duration> TakeTurn(const std::string& budget,
                                          const std::vector<RateWindow>& windows,
                                          absl::Duration margin) override {
    if (!reachable || clock_->Now() < down_until) return absl::UnavailableError("redis: down");
    budgets.insert(budget);
    const absl::Time now = clock_->Now();
    absl::Time next = paused_until;
    for (const RateWindow& w : windows) {
      const size_t limit = static_cast<size_t>(w.limit);
      if (log.size() >= limit) next = std::max(next, log[log.size() - limit] + w.window + margin);
    }
    if (next > now) return next - now;
    log.push_back(now);
    return absl::ZeroDuration();
  }
  void HoldBack(const std::string&, absl::Duration delay) override {
    paused_until = std::max(paused_until, clock_->Now() + delay);
  }
  void Seed(const std::string&, const std::vector<absl::Time>& times, absl::Duration) override {
    seeded.insert(seeded.end(), times.begin(), times.end());
    log.insert(log.end(), times.begin(), times.end());
    std::sort(log.begin(), log.end());
  }
  int Replicas() const override { return replicas; }

  bool reachable = true;
  // Unreachable until then (a blip).
  absl::Time down_until = absl::InfinitePast();
  int replicas = 1;
  std::vector<absl::Time> log;
  std::vector<absl::Time> seeded;
  std::set<std::string> budgets;
  absl::Time paused_until = absl::InfinitePast();

 private:
  FakeClock* clock_;
};

TEST(RequestPacerTest, ReplicasSharingABudgetStayUnderItTogether) {
  FakeClock clock;
  FakeSharedBudget shared(&clock);
  ProjectPacers replica_a({{4, absl::Minutes(1)}}, &clock, &shared, "persons");
  ProjectPacers replica_b({{4, absl::Minutes(1)}}, &clock, &shared, "persons");
  const absl::Time start = clock.Now();
  for (int i = 0; i < 4; ++i) {
    ProjectPacers& pacers = i % 2 == 0 ? replica_a : replica_b;
    ASSERT_TRUE(pacers.For("demo")->Acquire(absl::InfiniteFuture(), {}).ok());
  }
  EXPECT_EQ(clock.Now(), start);  // Four turns of the one budget: at once.
  // Alone, each replica would allow four; together the fifth waits.
  ASSERT_TRUE(replica_b.For("demo")->Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Minutes(1) + kMargin);
  EXPECT_EQ(shared.budgets, std::set<std::string>{"persons:demo"});
}

TEST(RequestPacerTest, ASharedWaitBeyondTheDeadlineIsResourceExhausted) {
  FakeClock clock;
  FakeSharedBudget shared(&clock);
  RequestPacer pacer({{1, absl::Minutes(1)}}, &clock, kMargin, &shared, "persons:demo");
  shared.log.push_back(clock.Now());  // Another replica's turn.
  const absl::Status status = pacer.Acquire(clock.Now() + absl::Seconds(10), {});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelay(status), absl::Minutes(1) + kMargin);
}

TEST(RequestPacerTest, A429HoldsTheWholeFleetBack) {
  FakeClock clock;
  FakeSharedBudget shared(&clock);
  RequestPacer seen_it({}, &clock, kMargin, &shared, "flags:demo");
  RequestPacer other({}, &clock, kMargin, &shared, "flags:demo");
  const absl::Time start = clock.Now();
  absl::Status throttled = absl::ResourceExhaustedError("429");
  AttachErrorInfo(throttled, "UPSTREAM_RATE_LIMITED");
  AttachRetryDelay(throttled, absl::Seconds(30));
  (void)seen_it.Run(absl::InfiniteFuture(), {}, [&] { return throttled; });

  ASSERT_TRUE(other.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Seconds(30));
}

TEST(RequestPacerTest, UnreachableBudgetPacesWithThisReplicasShareThenSeedsItsLogBack) {
  FakeClock clock;
  FakeSharedBudget shared(&clock);
  shared.reachable = false;
  shared.replicas = 3;
  RequestPacer pacer({{6, absl::Minutes(1)}}, &clock, kMargin, &shared, "persons:demo");
  const absl::Time start = clock.Now();
  // A third of six: two at once, the third a window later.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Minutes(1) + kMargin);

  // Redis is back, empty: the requests sent alone are written into it first.
  shared.reachable = true;
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(shared.seeded.size(), 3u);
  // The turn that found Redis back, the three sent alone, and this one's: the
  // first is given up (the budget decides again once it knows the three).
  EXPECT_EQ(shared.log.size(), 5u);
}

TEST(RequestPacerTest, ABlipAfterSharedTurnsWaitsForTheFleetsBudgetInsteadOfAddingItsShare) {
  FakeClock clock;
  FakeSharedBudget shared(&clock);
  shared.replicas = 3;
  RequestPacer mine({{6, absl::Minutes(1)}}, &clock, kMargin, &shared, "persons:demo");
  RequestPacer others({{6, absl::Minutes(1)}}, &clock, kMargin, &shared, "persons:demo");
  const absl::Time start = clock.Now();
  ASSERT_TRUE(mine.Acquire(absl::InfiniteFuture(), {}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(others.Acquire(absl::InfiniteFuture(), {}).ok());
  // The fleet's window is full. Redis misses a beat for a second: alone,
  // this replica's share (two, one used) would send one more at once, the
  // seventh in the window.
  shared.down_until = start + absl::Seconds(1);
  ASSERT_TRUE(mine.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Minutes(1) + kMargin);
  EXPECT_EQ(shared.log.size(), 7u);
  EXPECT_TRUE(shared.seeded.empty()) << "a turn was taken alone";
  for (size_t i = 6; i < shared.log.size(); ++i) {
    EXPECT_GE(shared.log[i] - shared.log[i - 6], absl::Minutes(1));
  }
}

TEST(RequestPacerTest, AnOutageAfterSharedTurnsPacesAloneAfterTheGraceOrAtTheDeadline) {
  FakeClock clock;
  FakeSharedBudget shared(&clock);
  shared.replicas = 3;
  RequestPacer pacer({{6, absl::Minutes(1)}}, &clock, kMargin, &shared, "persons:demo");
  const absl::Time start = clock.Now();
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  shared.reachable = false;
  // Asks again for 3 s, then its share allows the second turn.
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Seconds(3));
  // Alone now, with its share (two a window): the third waits for the first.
  ASSERT_TRUE(pacer.Acquire(absl::InfiniteFuture(), {}).ok());
  EXPECT_EQ(clock.Now(), start + absl::Minutes(1) + kMargin);

  // A call whose deadline comes first does not wait for the grace.
  RequestPacer hurried({{6, absl::Minutes(1)}}, &clock, kMargin, &shared, "persons:demo");
  shared.reachable = true;
  ASSERT_TRUE(hurried.Acquire(absl::InfiniteFuture(), {}).ok());
  shared.reachable = false;
  const absl::Time before = clock.Now();
  ASSERT_TRUE(hurried.Acquire(before + absl::Milliseconds(100), {}).ok());
  EXPECT_EQ(clock.Now(), before);
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
