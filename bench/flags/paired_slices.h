// The bookkeeping of grpc_load's paired measurement: two servers (sides 0
// and 1) loaded in turn, in short slices, within one phase, so that a change
// in this VM's speed (which drifts over seconds) falls on both sides of a
// comparison instead of on whichever was measured later.
//
// The slices run in the order A B B A A B B A ... after an even number of
// warm-up slices (alternating A B, discarded): every side gets the same
// number of measured slices, and a steady drift over the phase gives both
// sides the same mean time. With one side every slice is side 0.
//
// Each slice is opened, loaded, closed, and drained (its calls answered)
// before the next one opens, so no call of one side overlaps a call of the
// other; its CPU figures are read around it. SliceLedger only adds up what
// the load generator reports per slice.

#ifndef BENCH_FLAGS_PAIRED_SLICES_H_
#define BENCH_FLAGS_PAIRED_SLICES_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/time.h"

namespace posthog_bench {

// What one slice measured.
struct Slice {
  int side = 0;
  // Wall time the slice was open for new calls.
  double seconds = 0;
  // Calls started while it was open and answered OK, and those that failed.
  int64_t calls = 0;
  int64_t errors = 0;
  // CPU the load generator (all its threads) used over the slice.
  double client_cpu_seconds = 0;
  // CPU the side's server used over the slice, or negative if unknown.
  double server_cpu_seconds = -1;
  // CPU the other side's server (idle in this slice) used, or negative.
  double idle_server_cpu_seconds = -1;
};

// A side's measured slices added up.
struct SideTotals {
  int slices = 0;
  double seconds = 0;
  int64_t calls = 0;
  int64_t errors = 0;
  double client_cpu_seconds = 0;
  // Negative if any slice's was unknown.
  double server_cpu_seconds = 0;
  double idle_server_cpu_seconds = 0;

  // Calls per second of the side's own slices (0 if none).
  double CallsPerSecond() const { return seconds > 0 ? calls / seconds : 0; }
};

class SliceLedger {
 public:
  // `sides` is 1 or 2; the first `warmup_slices` (rounded up to even when
  // there are two sides) are run but not counted.
  SliceLedger(int sides, int warmup_slices);

  int sides() const { return sides_; }
  int warmup_slices() const { return warmup_slices_; }

  // The side slice number `index` (0-based, warm-up included) loads.
  int SideOf(int index) const;
  // Whether slice `index` counts.
  bool Measured(int index) const { return index >= warmup_slices_; }
  // How many slices a phase with `measured_per_side` measured slices per
  // side runs in all, warm-up included.
  int TotalSlices(int measured_per_side) const;

  // Records slice `index`'s figures (slice.side must be SideOf(index)); a
  // warm-up slice is kept apart and not counted. Returns false, recording
  // nothing, if the side does not match.
  bool Add(int index, const Slice& slice);

  SideTotals Totals(int side) const;
  // The measured slices, in order.
  const std::vector<Slice>& measured() const { return measured_; }
  const std::vector<Slice>& warmup() const { return warmup_; }

 private:
  int sides_;
  int warmup_slices_;
  std::vector<Slice> measured_;
  std::vector<Slice> warmup_;
};

// What RunSlices calls.
struct SliceHooks {
  // Makes one call to `side` from worker `thread` (each worker calls from its
  // own thread) and says whether it succeeded; `measured` says whether the
  // slice counts (whether to keep the call's latency).
  std::function<bool(int thread, int side, bool measured)> call;
  // CPU seconds so far: the load generator's, and each side's server's
  // (negative if unknown). Read before each slice opens and after it drains.
  std::function<double()> client_cpu;
  std::function<double(int side)> server_cpu;
};

// Runs ledger->TotalSlices(measured_per_side) slices of `slice_length` each
// with `threads` workers calling back to back (closed loop), and adds each
// slice to `ledger`. A slice is closed to new calls after `slice_length`,
// then drained: the next opens once every call of this one has returned.
// The calls must be bounded in time (a deadline) for the drain to end.
void RunSlices(int threads, absl::Duration slice_length, int measured_per_side,
               const SliceHooks& hooks, SliceLedger* ledger);

}  // namespace posthog_bench

#endif  // BENCH_FLAGS_PAIRED_SLICES_H_
