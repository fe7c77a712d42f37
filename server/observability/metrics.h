#ifndef SERVER_OBSERVABILITY_METRICS_H_
#define SERVER_OBSERVABILITY_METRICS_H_

// A Prometheus metrics registry small enough to read in one sitting: counters
// and histograms with labels, and observed families whose values are read
// from their owner when exposed (gauges such as the spool's size), all in the
// text format (version 0.0.4) on the admin port.
//
// Families are created once at start-up (their label names fixed); series are
// created on first use. Thread-safe: each family has its own mutex, held only
// to find a series; updates to a series are atomic. A hot path resolves its
// series once (WithLabels) and then updates it without a lookup or a lock.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace posthog_gateway {

class Counter final {
 public:
  // One series of the family. Lives as long as the registry.
  class Series final {
   public:
    // Add adds `value` (>= 0). Lock-free.
    void Add(double value = 1);

   private:
    friend class Counter;
    std::atomic<double> value_{0};
  };

  // Add adds `value` (>= 0) to the series with these label values, given in
  // the order of the family's label names.
  void Add(absl::Span<const std::string> label_values, double value = 1);

  // WithLabels returns the series with these label values, creating it.
  Series* WithLabels(absl::Span<const std::string> label_values);

 private:
  friend class MetricsRegistry;
  Counter(std::string name, std::string help, std::vector<std::string> label_names);
  void Expose(std::string& out) const;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<Series>> series_
      ABSL_GUARDED_BY(mu_);
};

class Histogram final {
 public:
  // One series of the family. Lives as long as the registry.
  class Series final {
   public:
    // Observe records `value`. Lock-free.
    void Observe(double value);

   private:
    friend class Histogram;
    explicit Series(const std::vector<double>* bounds) : bounds(bounds), counts(bounds->size()) {}
    const std::vector<double>* const bounds;    // The family's.
    std::vector<std::atomic<uint64_t>> counts;  // Not cumulative; one per bound.
    std::atomic<uint64_t> count{0};
    std::atomic<double> sum{0};
  };

  // Observe records `value` in the series with these label values.
  void Observe(absl::Span<const std::string> label_values, double value);

  // WithLabels returns the series with these label values, creating it.
  Series* WithLabels(absl::Span<const std::string> label_values);

 private:
  friend class MetricsRegistry;
  Histogram(std::string name, std::string help, std::vector<std::string> label_names,
            std::vector<double> bounds);
  void Expose(std::string& out) const;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // Upper bounds, ascending; +Inf implied.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<Series>> series_
      ABSL_GUARDED_BY(mu_);
};

// What an observed family reads: one value per series, by label values.
using MetricReading = std::vector<std::pair<std::vector<std::string>, double>>;

class MetricsRegistry final {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The registry owns the families; the pointers live as long as it does.
  Counter* AddCounter(std::string name, std::string help, std::vector<std::string> label_names);
  Histogram* AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                          std::vector<double> bounds);

  // AddObserved adds a family whose series `read` returns each time the
  // registry is exposed. `type` is "gauge", or "counter" for a total kept
  // elsewhere. `read` must stay callable while anything may call Expose,
  // and must not call into the registry.
  void AddObserved(std::string name, std::string help, std::string type,
                   std::vector<std::string> label_names, std::function<MetricReading()> read);

  // Expose renders every family in the Prometheus text format, families in
  // the order they were added, series sorted by label values.
  std::string Expose() const;

  // Latency buckets in seconds, from 0.5 ms to 30 s.
  static std::vector<double> LatencyBuckets();

 private:
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Counter>> counters_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Histogram>> histograms_ ABSL_GUARDED_BY(mu_);
  // Renders one family each, in the order they were added.
  std::vector<std::function<void(std::string&)>> exposers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway

#endif  // SERVER_OBSERVABILITY_METRICS_H_
