#include "server/authz/bearer_tokens.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fakes/scratch_dir.h"

namespace posthog_gateway {
namespace {

std::string HexSha256(absl::string_view token) {
  const std::array<unsigned char, 32> digest = Sha256(token);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

class BearerTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_support::ScratchDir("tokens");
    path_ = dir_ + "/tokens";
  }

  // Replaces the file the way Kubernetes swaps a Secret: a new file renamed
  // over the old one.
  void Write(const std::string& text) {
    const std::string temp = path_ + ".tmp";
    std::ofstream(temp) << text;
    ASSERT_EQ(std::rename(temp.c_str(), path_.c_str()), 0);
  }

  std::string dir_;
  std::string path_;
};

TEST(Sha256Test, MatchesTheKnownDigest) {
  // printf %s test | sha256sum
  EXPECT_EQ(HexSha256("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

TEST_F(BearerTokensTest, NamesTheCallerOfAKnownTokenFromItsHashOnly) {
  Write(absl::StrCat("# billing's token\n\nbilling-batch ", HexSha256("s3cret-billing"),
                     "\n  checkout\t", HexSha256("s3cret-checkout"), "  \n"));
  BearerTokens tokens(path_);
  EXPECT_EQ(tokens.LoadError(), "");
  EXPECT_EQ(*tokens.Identify("s3cret-billing"), "billing-batch");
  EXPECT_EQ(*tokens.Identify("s3cret-checkout"), "checkout");
  // The file holds hashes: the hash itself is not a token.
  EXPECT_EQ(tokens.Identify(HexSha256("s3cret-billing")).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(BearerTokensTest, RefusesUnknownNearAndEmptyTokensWithoutEchoingThem) {
  Write(absl::StrCat("billing ", HexSha256("s3cret-billing"), "\n"));
  BearerTokens tokens(path_);
  for (const char* token : {"s3cret-billinG", "s3cret-billin", "s3cret-billing ", "", "x"}) {
    absl::StatusOr<std::string> caller = tokens.Identify(token);
    ASSERT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << token;
    if (*token != '\0') {
      EXPECT_EQ(caller.status().message().find(token), absl::string_view::npos);
    }
  }
}

TEST_F(BearerTokensTest, ReloadPicksUpARotatedFileAndDropsTheOldToken) {
  Write(absl::StrCat("billing ", HexSha256("old-token"), "\n"));
  BearerTokens tokens(path_);
  ASSERT_TRUE(tokens.Identify("old-token").ok());
  EXPECT_FALSE(tokens.Reload()) << "nothing changed";
  Write(absl::StrCat("billing ", HexSha256("new-token"), "\n"));
  EXPECT_TRUE(tokens.Reload());
  EXPECT_EQ(*tokens.Identify("new-token"), "billing");
  EXPECT_EQ(tokens.Identify("old-token").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(BearerTokensTest, AMalformedOrMissingFileKeepsThePreviousTokens) {
  Write(absl::StrCat("billing ", HexSha256("token"), "\n"));
  BearerTokens tokens(path_);
  Write("billing not-a-hash\n");
  EXPECT_FALSE(tokens.Reload());
  EXPECT_NE(tokens.LoadError().find("line 1"), std::string::npos) << tokens.LoadError();
  EXPECT_EQ(*tokens.Identify("token"), "billing");
  std::remove(path_.c_str());
  EXPECT_FALSE(tokens.Reload());
  EXPECT_NE(tokens.LoadError().find("cannot read"), std::string::npos);
  EXPECT_EQ(*tokens.Identify("token"), "billing");
}

TEST_F(BearerTokensTest, AFileThatNeverLoadedRefusesEveryToken) {
  BearerTokens tokens(path_);  // No file yet.
  EXPECT_NE(tokens.LoadError(), "");
  EXPECT_EQ(tokens.Identify("anything").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(BearerTokensParseTest, RefusesMalformedLinesNamingTheLine) {
  const std::string hash(64, 'a');
  for (const std::string& text : {
           std::string("billing"),                          // No hash.
           absl::StrCat("billing ", hash, " extra"),        // Three fields.
           absl::StrCat("billing ", hash.substr(1)),        // 63 digits.
           absl::StrCat("billing ", std::string(64, 'g')),  // Not hex.
           absl::StrCat("spiffe://x/y ", hash),             // A name that looks like a URI.
           absl::StrCat(std::string(129, 'n'), " ", hash),  // A name too long.
       }) {
    absl::StatusOr<std::vector<BearerTokens::Entry>> entries = BearerTokens::Parse("# ok\n" + text);
    ASSERT_FALSE(entries.ok()) << text;
    EXPECT_NE(entries.status().message().find("line 2"), absl::string_view::npos)
        << entries.status();
  }
}

}  // namespace
}  // namespace posthog_gateway
