#include "server/grpc/stream_limits.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/error_details.h"
#include "server/common/error_reasons.h"

namespace posthog_gateway {
namespace {

// What RetryInfo suggests: streams end at their readers' pace, so a second
// is a guess; the caller's backoff does the rest.
constexpr absl::Duration kRetryDelay = absl::Seconds(1);

}  // namespace

StreamLimits::Slot::Slot(Slot&& other) noexcept
    : limits_(std::exchange(other.limits_, nullptr)), caller_(std::move(other.caller_)) {}

StreamLimits::Slot& StreamLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    limits_ = std::exchange(other.limits_, nullptr);
    caller_ = std::move(other.caller_);
  }
  return *this;
}

StreamLimits::Slot::~Slot() { Release(); }

void StreamLimits::Slot::Release() {
  if (limits_ != nullptr) std::exchange(limits_, nullptr)->Release(caller_);
}

StreamLimits::StreamLimits(int64_t max_streams, int64_t max_streams_per_caller)
    : max_streams_(max_streams), max_per_caller_(max_streams_per_caller) {}

StreamLimits* StreamLimits::Unlimited() {
  static StreamLimits* const unlimited = new StreamLimits(0, 0);
  return unlimited;
}

absl::StatusOr<StreamLimits::Slot> StreamLimits::Open(absl::string_view caller,
                                                      absl::string_view method) {
  absl::MutexLock lock(&mu_);
  const char* field = nullptr;
  int64_t max = 0;
  int64_t open = 0;
  if (max_streams_ > 0 && open_ >= max_streams_) {
    field = "server.max_streams";
    max = max_streams_;
    open = open_;
  } else if (max_per_caller_ > 0 && !caller.empty()) {
    auto found = by_caller_.find(caller);
    const int64_t mine = found == by_caller_.end() ? 0 : found->second;
    if (mine >= max_per_caller_) {
      field = "server.max_streams_per_caller";
      max = max_per_caller_;
      open = mine;
    }
  }
  if (field != nullptr) {
    absl::Status status = absl::ResourceExhaustedError(
        absl::StrCat(method, ": ", open, " streams are open",
                     caller.empty() ? "" : absl::StrCat(" for caller ", caller), ", the most ",
                     field, " allows (", max, "); end one or retry later"));
    AttachErrorInfo(status, reasons::kStreamLimitReached,
                    {{"limit", field},
                     {"max", absl::StrCat(max)},
                     {"open", absl::StrCat(open)},
                     {"caller", std::string(caller)},
                     {"method", std::string(method)}});
    AttachRetryDelay(status, kRetryDelay);
    return status;
  }
  ++open_;
  if (!caller.empty()) ++by_caller_[caller];
  return Slot(this, std::string(caller));
}

void StreamLimits::Release(const std::string& caller) {
  absl::MutexLock lock(&mu_);
  --open_;
  if (caller.empty()) return;
  auto found = by_caller_.find(caller);
  if (found != by_caller_.end() && --found->second <= 0) by_caller_.erase(found);
}

int64_t StreamLimits::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

int64_t StreamLimits::open(absl::string_view caller) const {
  absl::MutexLock lock(&mu_);
  auto found = by_caller_.find(caller);
  return found == by_caller_.end() ? 0 : found->second;
}

}  // namespace posthog_gateway
