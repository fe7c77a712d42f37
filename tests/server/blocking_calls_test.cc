#include "server/grpc/blocking_calls.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

TEST(BlockingCallsTest, RunsEachCallOnAnotherThread) {
  BlockingCalls calls;
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on = caller;
  absl::Notification done;
  calls.Start([&] {
    ran_on = std::this_thread::get_id();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_NE(ran_on, caller);
}

TEST(BlockingCallsTest, CountsRunningCallsAndTakesMoveOnlyCalls) {
  BlockingCalls calls;
  absl::Notification release;
  absl::Notification started;
  auto owned = std::make_unique<int>(7);
  std::atomic<int> seen{0};
  calls.Start([&, owned = std::move(owned)] {
    started.Notify();
    release.WaitForNotification();
    seen = *owned;
  });
  started.WaitForNotification();
  EXPECT_EQ(calls.Running(), 1);
  release.Notify();
  while (calls.Running() != 0) std::this_thread::yield();
  EXPECT_EQ(seen.load(), 7);
}

TEST(BlockingCallsTest, TryStartRefusesPastTheLimitAndLeavesTheCall) {
  BlockingCalls calls(/*max_running=*/1);
  absl::Notification release;
  absl::AnyInvocable<void()&&> first = [&] { release.WaitForNotification(); };
  ASSERT_TRUE(calls.TryStart(first));
  bool ran = false;
  absl::AnyInvocable<void()&&> second = [&] { ran = true; };
  EXPECT_FALSE(calls.TryStart(second));
  ASSERT_TRUE(second);  // Still the caller's to run.
  std::move(second)();
  EXPECT_TRUE(ran);
  release.Notify();
  while (calls.Running() != 0) std::this_thread::yield();
  absl::AnyInvocable<void()&&> third = [] {};
  EXPECT_TRUE(calls.TryStart(third));
}

TEST(BlockingCallsTest, DestructorWaitsForRunningCalls) {
  std::atomic<bool> finished{false};
  absl::Notification started;
  {
    BlockingCalls calls;
    calls.Start([&] {
      started.Notify();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      finished = true;
    });
    started.WaitForNotification();
  }
  EXPECT_TRUE(finished.load());
}

}  // namespace
}  // namespace posthog_gateway
