#include "server/common/single_flight_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"

namespace posthog_gateway {
namespace {

using test_support::FakeClock;

TEST(SingleFlightCacheTest, ABurstOfConcurrentMissesLoadsOnce) {
  FakeClock clock;
  SingleFlightCache<int> cache(absl::Seconds(5), &clock);
  std::atomic<int> loads{0};
  absl::Notification release;
  auto load = [&]() -> absl::StatusOr<int> {
    ++loads;
    release.WaitForNotification();
    return 42;
  };
  std::vector<std::thread> callers;
  std::atomic<int> answers{0};
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&] {
      absl::StatusOr<int> value = cache.Get("demo", load);
      if (value.ok() && *value == 42) ++answers;
    });
  }
  // Whatever the interleaving, the first loader holds every other caller.
  while (loads.load() == 0) std::this_thread::yield();
  release.Notify();
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(answers.load(), 8);
}

TEST(SingleFlightCacheTest, ServesFromTheCacheUntilTheTtlPasses) {
  FakeClock clock;
  SingleFlightCache<int> cache(absl::Seconds(5), &clock);
  int loads = 0;
  auto load = [&]() -> absl::StatusOr<int> { return ++loads; };
  EXPECT_EQ(*cache.Get("demo", load), 1);
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(*cache.Get("demo", load), 1);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(*cache.Get("demo", load), 2);
  EXPECT_EQ(*cache.Get("other", load), 3);
}

TEST(SingleFlightCacheTest, DoesNotCacheFailures) {
  FakeClock clock;
  SingleFlightCache<int> cache(absl::Seconds(5), &clock);
  int loads = 0;
  auto failing = [&]() -> absl::StatusOr<int> {
    ++loads;
    return absl::UnavailableError("down");
  };
  EXPECT_EQ(cache.Get("demo", failing).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cache.Get("demo", failing).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(loads, 2);
}

}  // namespace
}  // namespace posthog_gateway
