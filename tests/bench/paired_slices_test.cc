// grpc_load's paired measurement (bench/flags/paired_slices.h): which side
// each slice loads, what counts, and that a slice's calls never overlap the
// other side's, so each side's CPU and calls are its own.

#include "bench/flags/paired_slices.h"

#include <atomic>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace posthog_bench {
namespace {

TEST(SliceLedgerTest, WarmupAlternatesThenABBA) {
  SliceLedger ledger(2, 3);  // Rounded up to 4: measured slices start at an A.
  EXPECT_EQ(ledger.warmup_slices(), 4);
  std::vector<int> sides;
  for (int i = 0; i < ledger.TotalSlices(4); ++i) sides.push_back(ledger.SideOf(i));
  EXPECT_EQ(sides, (std::vector<int>{0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0}));
  EXPECT_FALSE(ledger.Measured(3));
  EXPECT_TRUE(ledger.Measured(4));
}

TEST(SliceLedgerTest, OddMeasuredCountStillEqualPerSide) {
  SliceLedger ledger(2, 0);
  int per_side[2] = {0, 0};
  for (int i = 0; i < ledger.TotalSlices(3); ++i) ++per_side[ledger.SideOf(i)];
  EXPECT_EQ(per_side[0], 3);
  EXPECT_EQ(per_side[1], 3);
}

TEST(SliceLedgerTest, OneSideIsAlwaysSideZero) {
  SliceLedger ledger(1, 3);
  EXPECT_EQ(ledger.warmup_slices(), 3);
  EXPECT_EQ(ledger.TotalSlices(5), 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ledger.SideOf(i), 0);
}

TEST(SliceLedgerTest, CountsMeasuredSlicesOfEachSideOnly) {
  SliceLedger ledger(2, 2);
  auto slice = [](int side, double seconds, int64_t calls, double server_cpu) {
    Slice s;
    s.side = side;
    s.seconds = seconds;
    s.calls = calls;
    s.errors = 1;
    s.client_cpu_seconds = 0.5;
    s.server_cpu_seconds = server_cpu;
    s.idle_server_cpu_seconds = 0.001;
    return s;
  };
  EXPECT_TRUE(ledger.Add(0, slice(0, 1, 1000, 9)));   // Warm-up.
  EXPECT_TRUE(ledger.Add(1, slice(1, 1, 1000, 9)));   // Warm-up.
  EXPECT_FALSE(ledger.Add(2, slice(1, 1, 1000, 9)));  // Slice 2 is side 0's.
  EXPECT_TRUE(ledger.Add(2, slice(0, 0.25, 100, 0.01)));
  EXPECT_TRUE(ledger.Add(3, slice(1, 0.25, 50, 0.02)));
  EXPECT_TRUE(ledger.Add(4, slice(1, 0.5, 150, -1)));  // CPU unknown.
  EXPECT_TRUE(ledger.Add(5, slice(0, 0.25, 300, 0.03)));
  EXPECT_EQ(ledger.warmup().size(), 2u);
  EXPECT_EQ(ledger.measured().size(), 4u);

  const SideTotals a = ledger.Totals(0);
  EXPECT_EQ(a.slices, 2);
  EXPECT_EQ(a.calls, 400);
  EXPECT_EQ(a.errors, 2);
  EXPECT_DOUBLE_EQ(a.seconds, 0.5);
  EXPECT_DOUBLE_EQ(a.CallsPerSecond(), 800);
  EXPECT_DOUBLE_EQ(a.client_cpu_seconds, 1.0);
  EXPECT_NEAR(a.server_cpu_seconds, 0.04, 1e-12);
  EXPECT_NEAR(a.idle_server_cpu_seconds, 0.002, 1e-12);

  const SideTotals b = ledger.Totals(1);
  EXPECT_EQ(b.calls, 200);
  EXPECT_DOUBLE_EQ(b.CallsPerSecond(), 200 / 0.75);
  EXPECT_LT(b.server_cpu_seconds, 0);  // One slice unknown: no partial sum.
}

TEST(SliceLedgerTest, NoSlicesNoRateNoCpu) {
  SliceLedger ledger(2, 0);
  EXPECT_EQ(ledger.Totals(1).CallsPerSecond(), 0);
  EXPECT_LT(ledger.Totals(1).server_cpu_seconds, 0);
}

// Fake servers whose "CPU" is a count of calls begun on them: every call of
// a side's slice must land in that side's slice (drained before the next
// opens), none in the other side's.
TEST(RunSlicesTest, SlicesAreDrainedAndAttributedToTheirSide) {
  constexpr int kThreads = 3;
  constexpr int kPerSide = 4;
  SliceLedger ledger(2, 2);
  std::atomic<int> in_flight[2] = {0, 0};
  std::atomic<int> overlaps{0};
  std::atomic<int64_t> begun[2] = {0, 0};
  std::atomic<int64_t> measured_ok[2] = {0, 0};
  std::atomic<int64_t> measured_failed[2] = {0, 0};
  SliceHooks hooks;
  hooks.call = [&](int thread, int side, bool measured) {
    ++begun[side];
    ++in_flight[side];
    if (in_flight[1 - side].load() != 0) ++overlaps;
    absl::SleepFor(absl::Microseconds(300));
    if (in_flight[1 - side].load() != 0) ++overlaps;
    --in_flight[side];
    const bool ok = !(thread == 0 && side == 1);  // Thread 0 fails on side 1.
    if (measured) ++(ok ? measured_ok : measured_failed)[side];
    return ok;
  };
  hooks.client_cpu = [] { return 0.0; };
  hooks.server_cpu = [&](int side) { return begun[side].load() * 1e-3; };
  RunSlices(kThreads, absl::Milliseconds(20), kPerSide, hooks, &ledger);

  EXPECT_EQ(overlaps.load(), 0);
  ASSERT_EQ(ledger.warmup().size(), 2u);
  ASSERT_EQ(ledger.measured().size(), 2u * kPerSide);
  for (int i = 0; i < 2 * kPerSide; ++i) {
    EXPECT_EQ(ledger.measured()[i].side, ledger.SideOf(i + 2)) << i;
    EXPECT_GT(ledger.measured()[i].seconds, 0) << i;
  }
  for (int side = 0; side < 2; ++side) {
    const SideTotals totals = ledger.Totals(side);
    EXPECT_EQ(totals.slices, kPerSide);
    EXPECT_GT(totals.calls, 0);
    EXPECT_EQ(totals.calls, measured_ok[side].load()) << side;
    EXPECT_EQ(totals.errors, measured_failed[side].load()) << side;
    // Every call begun in the side's slices, and only those.
    EXPECT_NEAR(totals.server_cpu_seconds, (totals.calls + totals.errors) * 1e-3, 1e-9) << side;
    EXPECT_NEAR(totals.idle_server_cpu_seconds, 0, 1e-12) << side;
  }
  EXPECT_EQ(ledger.Totals(0).errors, 0);
  EXPECT_GT(ledger.Totals(1).errors, 0);
}

}  // namespace
}  // namespace posthog_bench
