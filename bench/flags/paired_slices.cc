#include "bench/flags/paired_slices.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace posthog_bench {

SliceLedger::SliceLedger(int sides, int warmup_slices)
    : sides_(sides == 2 ? 2 : 1), warmup_slices_(warmup_slices < 0 ? 0 : warmup_slices) {
  // With two sides the measured slices must start at an A of A B B A.
  if (sides_ == 2 && warmup_slices_ % 2 != 0) ++warmup_slices_;
}

int SliceLedger::SideOf(int index) const {
  if (sides_ == 1) return 0;
  if (index < warmup_slices_) return index % 2;
  const int in_four = (index - warmup_slices_) % 4;
  return in_four == 1 || in_four == 2 ? 1 : 0;
}

int SliceLedger::TotalSlices(int measured_per_side) const {
  if (measured_per_side < 1) measured_per_side = 1;
  return warmup_slices_ + sides_ * measured_per_side;
}

bool SliceLedger::Add(int index, const Slice& slice) {
  if (slice.side != SideOf(index)) return false;
  (Measured(index) ? measured_ : warmup_).push_back(slice);
  return true;
}

SideTotals SliceLedger::Totals(int side) const {
  SideTotals totals;
  for (const Slice& slice : measured_) {
    if (slice.side != side) continue;
    ++totals.slices;
    totals.seconds += slice.seconds;
    totals.calls += slice.calls;
    totals.errors += slice.errors;
    totals.client_cpu_seconds += slice.client_cpu_seconds;
    // Unknown once, unknown for the side: a partial sum would look cheap.
    if (slice.server_cpu_seconds < 0 || totals.server_cpu_seconds < 0) {
      totals.server_cpu_seconds = -1;
    } else {
      totals.server_cpu_seconds += slice.server_cpu_seconds;
    }
    if (slice.idle_server_cpu_seconds < 0 || totals.idle_server_cpu_seconds < 0) {
      totals.idle_server_cpu_seconds = -1;
    } else {
      totals.idle_server_cpu_seconds += slice.idle_server_cpu_seconds;
    }
  }
  if (totals.slices == 0) {
    totals.server_cpu_seconds = -1;
    totals.idle_server_cpu_seconds = -1;
  }
  return totals;
}

void RunSlices(int threads, absl::Duration slice_length, int measured_per_side,
               const SliceHooks& hooks, SliceLedger* ledger) {
  const int total = ledger->TotalSlices(measured_per_side);
  absl::Mutex mu;
  int current = -1;   // The slice open or last opened.
  bool open = false;  // Whether `current` takes new calls.
  bool done = false;  // No more slices.
  int running = 0;    // Workers inside `current`.
  std::vector<int64_t> calls(total, 0);
  std::vector<int64_t> errors(total, 0);
  // `open`, read without the lock between calls.
  std::atomic<bool> open_now{false};

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      int seen = -1;
      for (;;) {
        int index;
        {
          absl::MutexLock lock(&mu);
          auto ready = [&] {
            mu.AssertReaderHeld();
            return done || (open && current != seen);
          };
          mu.Await(absl::Condition(&ready));
          if (done) return;
          index = seen = current;
          // Counted in while the slice is open, under the lock: the slice
          // cannot close and the next open until this worker is out again,
          // so every call below goes to `index`'s side.
          ++running;
        }
        const int side = ledger->SideOf(index);
        const bool measured = ledger->Measured(index);
        int64_t ok = 0;
        int64_t failed = 0;
        while (open_now.load(std::memory_order_acquire)) {
          if (hooks.call(t, side, measured)) {
            ++ok;
          } else {
            ++failed;
          }
        }
        absl::MutexLock lock(&mu);
        calls[index] += ok;
        errors[index] += failed;
        --running;
      }
    });
  }

  for (int index = 0; index < total; ++index) {
    const int side = ledger->SideOf(index);
    const double client_before = hooks.client_cpu();
    const double server_before[2] = {hooks.server_cpu(0), hooks.server_cpu(1)};
    absl::Time start;
    {
      absl::MutexLock lock(&mu);
      current = index;
      open = true;
      open_now.store(true, std::memory_order_release);
      start = absl::Now();
    }
    absl::SleepFor(slice_length);
    absl::Duration open_for;
    {
      absl::MutexLock lock(&mu);
      open = false;
      open_now.store(false, std::memory_order_release);
      open_for = absl::Now() - start;
      auto drained = [&] {
        mu.AssertReaderHeld();
        return running == 0;
      };
      mu.Await(absl::Condition(&drained));
    }
    const double client_after = hooks.client_cpu();
    const double server_after[2] = {hooks.server_cpu(0), hooks.server_cpu(1)};
    auto delta = [](double before, double after) {
      return before < 0 || after < 0 ? -1.0 : after - before;
    };
    Slice slice;
    slice.side = side;
    slice.seconds = absl::ToDoubleSeconds(open_for);
    {
      absl::MutexLock lock(&mu);
      slice.calls = calls[index];
      slice.errors = errors[index];
    }
    slice.client_cpu_seconds = client_after - client_before;
    slice.server_cpu_seconds = delta(server_before[side], server_after[side]);
    if (ledger->sides() == 2) {
      slice.idle_server_cpu_seconds = delta(server_before[1 - side], server_after[1 - side]);
    }
    ledger->Add(index, slice);
  }
  {
    absl::MutexLock lock(&mu);
    done = true;
  }
  for (auto& worker : workers) worker.join();
}

}  // namespace posthog_bench
