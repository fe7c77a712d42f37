#include "emulator/rate_limiter.h"

#include "gtest/gtest.h"

namespace posthog_emulator {
namespace {

class FakeClock final : public Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1700000000);
};

class RateLimiterTest : public ::testing::Test {
 protected:
  RateLimiterTest() : limiter_(&clock_) {
    RateLimitConfig config;
    config.enabled = true;
    config.default_per_minute = 3;
    config.default_per_hour = 100;
    limiter_.Configure(config);
  }
  FakeClock clock_;
  RateLimiter limiter_;
};

TEST_F(RateLimiterTest, RefusesTheRequestAfterTheBurstLimit) {
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), std::nullopt);
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), std::nullopt);
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), std::nullopt);
  // DRF: (60 s - 0 s elapsed) / (3 - 3 + 1) = 60.
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), 60);
}

TEST_F(RateLimiterTest, AllowsAgainOnceTheOldestRequestLeavesTheWindow) {
  for (int i = 0; i < 3; ++i) limiter_.Check(ThrottleClass::kDefault, "k");
  clock_.now += absl::Seconds(45);
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), 15);
  clock_.now += absl::Seconds(16);
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), std::nullopt);
}

// minute_ms shortens the per-minute windows (tests leave room for delays).
TEST_F(RateLimiterTest, MinuteMsShortensThePerMinuteWindows) {
  RateLimitConfig config = RateLimitConfig::FromJson(
      {{"enabled", true}, {"default_per_minute", 3}, {"minute_ms", 50000}}, RateLimitConfig());
  EXPECT_EQ(config.ToJson()["minute_ms"], 50000);
  limiter_.Configure(config);
  for (int i = 0; i < 3; ++i) limiter_.Check(ThrottleClass::kDefault, "k");
  clock_.now += absl::Seconds(49);
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), 1);
  clock_.now += absl::Seconds(1);
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), std::nullopt);
}

TEST_F(RateLimiterTest, KeysHaveSeparateBuckets) {
  for (int i = 0; i < 3; ++i) limiter_.Check(ThrottleClass::kDefault, "a");
  EXPECT_EQ(limiter_.Check(ThrottleClass::kDefault, "b"), std::nullopt);
}

TEST_F(RateLimiterTest, DisabledLimiterAllowsEverything) {
  limiter_.Configure(RateLimitConfig());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(limiter_.Check(ThrottleClass::kDefault, "k"), std::nullopt);
  }
}

}  // namespace
}  // namespace posthog_emulator
