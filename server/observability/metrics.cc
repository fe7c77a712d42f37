#include "server/observability/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace posthog_gateway {
namespace {

void AtomicAdd(std::atomic<double>& target, double value) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + value, std::memory_order_relaxed)) {
  }
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// `{a="x",b="y"}` plus an optional extra label, or "" with no labels at all.
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const std::string& extra_name = "", const std::string& extra_value = "") {
  std::vector<std::string> parts;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    parts.push_back(absl::StrCat(names[i], "=\"", EscapeLabelValue(values[i]), "\""));
  }
  if (!extra_name.empty()) parts.push_back(absl::StrCat(extra_name, "=\"", extra_value, "\""));
  if (parts.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) absl::StrAppend(&out, i ? "," : "", parts[i]);
  return out + "}";
}

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::trunc(value) == value && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.9g", value);
}

template <typename Map>
std::vector<const typename Map::value_type*> Sorted(const Map& series) {
  std::vector<const typename Map::value_type*> sorted;
  for (const auto& entry : series) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  return sorted;
}

}  // namespace

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void Counter::Series::Add(double value) { AtomicAdd(value_, value); }

Counter::Series* Counter::WithLabels(absl::Span<const std::string> label_values) {
  std::vector<std::string> key(label_values.begin(), label_values.end());
  absl::MutexLock lock(&mu_);
  auto& slot = series_[key];
  if (slot == nullptr) slot = std::make_unique<Series>();
  return slot.get();
}

void Counter::Add(absl::Span<const std::string> label_values, double value) {
  WithLabels(label_values)->Add(value);
}

void Counter::Expose(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " counter\n");
  absl::MutexLock lock(&mu_);
  for (const auto* entry : Sorted(series_)) {
    absl::StrAppend(&out, name_, Labels(label_names_, entry->first), " ",
                    Number(entry->second->value_.load()), "\n");
  }
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

void Histogram::Series::Observe(double value) {
  const size_t bucket = std::lower_bound(bounds->begin(), bounds->end(), value) - bounds->begin();
  if (bucket < bounds->size()) counts[bucket].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum, value);
}

Histogram::Series* Histogram::WithLabels(absl::Span<const std::string> label_values) {
  std::vector<std::string> key(label_values.begin(), label_values.end());
  absl::MutexLock lock(&mu_);
  auto& slot = series_[key];
  if (slot == nullptr) slot = std::unique_ptr<Series>(new Series(&bounds_));
  return slot.get();
}

void Histogram::Observe(absl::Span<const std::string> label_values, double value) {
  WithLabels(label_values)->Observe(value);
}

void Histogram::Expose(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " histogram\n");
  absl::MutexLock lock(&mu_);
  for (const auto* entry : Sorted(series_)) {
    const Series& series = *entry->second;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += series.counts[i].load();
      absl::StrAppend(&out, name_, "_bucket",
                      Labels(label_names_, entry->first, "le", Number(bounds_[i])), " ", cumulative,
                      "\n");
    }
    const uint64_t count = series.count.load();
    absl::StrAppend(&out, name_, "_bucket", Labels(label_names_, entry->first, "le", "+Inf"), " ",
                    count, "\n");
    absl::StrAppend(&out, name_, "_sum", Labels(label_names_, entry->first), " ",
                    Number(series.sum.load()), "\n");
    absl::StrAppend(&out, name_, "_count", Labels(label_names_, entry->first), " ", count, "\n");
  }
}

Counter* MetricsRegistry::AddCounter(std::string name, std::string help,
                                     std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  counters_.push_back(std::unique_ptr<Counter>(
      new Counter(std::move(name), std::move(help), std::move(label_names))));
  Counter* counter = counters_.back().get();
  exposers_.push_back([counter](std::string& out) { counter->Expose(out); });
  return counter;
}

Histogram* MetricsRegistry::AddHistogram(std::string name, std::string help,
                                         std::vector<std::string> label_names,
                                         std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  std::sort(bounds.begin(), bounds.end());
  histograms_.push_back(std::unique_ptr<Histogram>(
      new Histogram(std::move(name), std::move(help), std::move(label_names), std::move(bounds))));
  Histogram* histogram = histograms_.back().get();
  exposers_.push_back([histogram](std::string& out) { histogram->Expose(out); });
  return histogram;
}

void MetricsRegistry::AddObserved(std::string name, std::string help, std::string type,
                                  std::vector<std::string> label_names,
                                  std::function<MetricReading()> read) {
  absl::MutexLock lock(&mu_);
  exposers_.push_back([name = std::move(name), help = std::move(help), type = std::move(type),
                       label_names = std::move(label_names),
                       read = std::move(read)](std::string& out) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    MetricReading reading = read();
    std::sort(reading.begin(), reading.end());
    for (const auto& [label_values, value] : reading) {
      absl::StrAppend(&out, name, Labels(label_names, label_values), " ", Number(value), "\n");
    }
  });
}

std::string MetricsRegistry::Expose() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& expose : exposers_) expose(out);
  return out;
}

std::vector<double> MetricsRegistry::LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace posthog_gateway
