#include "server/grpc/arena_message_allocator.h"

#include <string>

#include "grpc/health/v1/health.pb.h"
#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

TEST(ArenaMessageAllocatorTest, GivesBothMessagesOneArenaPerCall) {
  ArenaMessageAllocator<HealthCheckRequest, HealthCheckResponse> allocator;
  auto* first = allocator.AllocateMessages();
  auto* second = allocator.AllocateMessages();
  ASSERT_NE(first->request()->GetArena(), nullptr);
  EXPECT_EQ(first->request()->GetArena(), first->response()->GetArena());
  EXPECT_NE(first->request()->GetArena(), second->request()->GetArena());
  first->Release();
  second->Release();
}

TEST(ArenaMessageAllocatorTest, HoldsMessagesLargerThanTheFirstBlock) {
  ArenaMessageAllocator<HealthCheckRequest, HealthCheckResponse, /*kFirstBlockBytes=*/256>
      allocator;
  auto* holder = allocator.AllocateMessages();
  const std::string service(64 << 10, 's');
  holder->request()->set_service(service);
  EXPECT_EQ(holder->request()->service(), service);
  holder->response()->set_status(HealthCheckResponse::SERVING);
  EXPECT_EQ(holder->response()->status(), HealthCheckResponse::SERVING);
  holder->Release();  // Frees the arena's extra blocks (checked under --config=asan).
}

}  // namespace
}  // namespace posthog_gateway
