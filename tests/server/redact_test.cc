#include "server/common/redact.h"

#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

TEST(RedactKeysTest, RedactsEveryPostHogKeyKind) {
  EXPECT_EQ(RedactKeys("a phx_AbC123 b phc_x-y_z c phs_1 d pha_q e phr_r"),
            "a phx_[redacted] b phc_[redacted] c phs_[redacted] d pha_[redacted] "
            "e phr_[redacted]");
}

TEST(RedactKeysTest, KeysInsideUrlsAndJsonAreRedacted) {
  EXPECT_EQ(RedactKeys(R"(?token=phc_secret&x=1 {"api_key":"phc_abc"})"),
            R"(?token=phc_[redacted]&x=1 {"api_key":"phc_[redacted]"})");
}

TEST(RedactKeysTest, LeavesOrdinaryWordsAlone) {
  EXPECT_EQ(RedactKeys("graph_x phone_ phx phx_"), "graph_x phone_ phx phx_[redacted]");
  EXPECT_EQ(RedactKeys("alphx_abc"), "alphx_abc");
}

TEST(TruncateTest, CutsAtACharacterBoundary) {
  EXPECT_EQ(Truncate("short", 10), "short");
  EXPECT_EQ(Truncate("abcdef", 3), "abc...");
  // "é" is two bytes; a cut inside it steps back before it.
  EXPECT_EQ(Truncate("a\xC3\xA9z", 2), "a...");
}

}  // namespace
}  // namespace posthog_gateway
