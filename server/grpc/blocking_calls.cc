#include "server/grpc/blocking_calls.h"

#include <system_error>
#include <thread>
#include <utility>

namespace posthog_gateway {

BlockingCalls::~BlockingCalls() {
  absl::MutexLock lock(&state_->mu);
  state_->mu.Await(absl::Condition(
      +[](int64_t* running) { return *running == 0; }, &state_->running));
}

bool BlockingCalls::Start(absl::AnyInvocable<void() &&> call) {
  {
    absl::MutexLock lock(&state_->mu);
    ++state_->running;
  }
  return Run(state_, call);
}

bool BlockingCalls::TryStart(absl::AnyInvocable<void() &&>& call) {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->running >= max_running_) return false;
    ++state_->running;
  }
  return Run(state_, call);
}

bool BlockingCalls::Run(const std::shared_ptr<State>& state, absl::AnyInvocable<void() &&>& call) {
  // Shared with the thread, so that the call is still here to give back
  // when the thread does not start.
  auto held = std::make_shared<absl::AnyInvocable<void() &&>>(std::move(call));
  try {
    std::thread([state, held]() mutable {
      std::move (*held)();
      absl::MutexLock lock(&state->mu);
      --state->running;
    }).detach();
    return true;
  } catch (const std::system_error&) {
    call = std::move(*held);
    absl::MutexLock lock(&state->mu);
    --state->running;
    return false;
  }
}

int64_t BlockingCalls::Running() const {
  absl::MutexLock lock(&state_->mu);
  return state_->running;
}

}  // namespace posthog_gateway
