#include "server/flags/flag_called.h"

#include "gtest/gtest.h"

namespace posthog_gateway::flags {
namespace {

TEST(FlagCalledDeduplicatorTest, SendsEachTupleOnceAndForgetsTheOldest) {
  FlagCalledDeduplicator seen(2);
  EXPECT_TRUE(seen.FirstTime("u1", "f", "true", {}));
  EXPECT_FALSE(seen.FirstTime("u1", "f", "true", {}));
  EXPECT_TRUE(seen.FirstTime("u1", "f", "\"test\"", {}));                 // Another value.
  EXPECT_TRUE(seen.FirstTime("u1", "f", "true", {{"company", "acme"}}));  // Groups differ.
  // Capacity 2: the first tuple was forgotten.
  EXPECT_TRUE(seen.FirstTime("u1", "f", "true", {}));
}

TEST(FlagCalledDeduplicatorTest, PartsCannotCollideThroughSeparators) {
  FlagCalledDeduplicator seen(10);
  EXPECT_TRUE(seen.FirstTime("a:b", "c", "true", {}));
  EXPECT_TRUE(seen.FirstTime("a", "b:c", "true", {}));
}

}  // namespace
}  // namespace posthog_gateway::flags
