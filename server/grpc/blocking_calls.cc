#include "server/grpc/blocking_calls.h"

#include <thread>
#include <utility>

namespace posthog_gateway {

BlockingCalls::~BlockingCalls() {
  absl::MutexLock lock(&state_->mu);
  state_->mu.Await(absl::Condition(
      +[](int64_t* running) { return *running == 0; }, &state_->running));
}

void BlockingCalls::Start(absl::AnyInvocable<void() &&> call) {
  {
    absl::MutexLock lock(&state_->mu);
    ++state_->running;
  }
  std::thread([state = state_, call = std::move(call)]() mutable {
    std::move(call)();
    absl::MutexLock lock(&state->mu);
    --state->running;
  }).detach();
}

int64_t BlockingCalls::Running() const {
  absl::MutexLock lock(&state_->mu);
  return state_->running;
}

}  // namespace posthog_gateway
