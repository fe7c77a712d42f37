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
  Run(state_, std::move(call));
}

bool BlockingCalls::TryStart(absl::AnyInvocable<void() &&>& call) {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->running >= max_running_) return false;
    ++state_->running;
  }
  Run(state_, std::move(call));
  return true;
}

void BlockingCalls::Run(std::shared_ptr<State> state, absl::AnyInvocable<void() &&> call) {
  std::thread([state = std::move(state), call = std::move(call)]() mutable {
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
