#include "server/authz/xfcc.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace posthog_gateway {
namespace {

TEST(ParseXfccTest, SplitsElementsAndPairsAndUnquotesValues) {
  absl::StatusOr<std::vector<XfccElement>> elements = ParseXfcc(
      "By=spiffe://cluster.local/ns/gw/sa/gateway;Hash=abc;"
      "Subject=\"CN=checkout,O=Shop\";URI=spiffe://cluster.local/ns/shop/sa/checkout");
  ASSERT_TRUE(elements.ok()) << elements.status();
  ASSERT_EQ(elements->size(), 1u);
  const XfccElement& element = elements->front();
  ASSERT_EQ(element.pairs.size(), 4u);
  EXPECT_EQ(*element.Find("by"), "spiffe://cluster.local/ns/gw/sa/gateway");
  EXPECT_EQ(*element.Find("Subject"), "CN=checkout,O=Shop");
  EXPECT_EQ(*element.Find("URI"), "spiffe://cluster.local/ns/shop/sa/checkout");
  EXPECT_EQ(element.Find("DNS"), nullptr);
}

TEST(ParseXfccTest, CommasSemicolonsAndEqualsInsideQuotesAreText) {
  absl::StatusOr<std::vector<XfccElement>> elements = ParseXfcc(
      "Subject=\"CN=a;b,c=d\";URI=spiffe://x/ns/a/sa/b , Hash=2;URI=spiffe://x/ns/c/sa/d");
  ASSERT_TRUE(elements.ok()) << elements.status();
  ASSERT_EQ(elements->size(), 2u);
  EXPECT_EQ(*(*elements)[0].Find("Subject"), "CN=a;b,c=d");
  EXPECT_EQ(*(*elements)[0].Find("URI"), "spiffe://x/ns/a/sa/b");
  EXPECT_EQ(*(*elements)[1].Find("URI"), "spiffe://x/ns/c/sa/d");
}

TEST(ParseXfccTest, BackslashEscapesTheNextCharacterInQuotes) {
  absl::StatusOr<std::vector<XfccElement>> elements =
      ParseXfcc(R"(Subject="CN=say \"hi\", O=back\\slash";URI=spiffe://x/y)");
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_EQ(*elements->front().Find("Subject"), R"(CN=say "hi", O=back\slash)");
  EXPECT_EQ(*elements->front().Find("URI"), "spiffe://x/y");
}

TEST(ParseXfccTest, KeepsRepeatedKeysInOrder) {
  absl::StatusOr<std::vector<XfccElement>> elements =
      ParseXfcc("Hash=1;DNS=a.example;DNS=b.example;URI=spiffe://x/y");
  ASSERT_TRUE(elements.ok()) << elements.status();
  ASSERT_EQ(elements->front().pairs.size(), 4u);
  EXPECT_EQ(elements->front().pairs[1].second, "a.example");
  EXPECT_EQ(elements->front().pairs[2].second, "b.example");
}

TEST(ParseXfccTest, RefusesMalformedHeaders) {
  for (const char* header : {
           "", "   ",
           "URI=\"spiffe://x/y",    // Unclosed quote.
           "URI=\"spiffe://x/y\\",  // Dangling backslash in quotes.
           "URI=\"a\"b",            // Text after a quoted value.
           "URI=spiffe://x\"y",     // Quote inside a bare value.
           "URI=a=b",               // '=' inside a bare value.
           "URI",                   // No '='.
           "=value",                // No key.
           "URI=a,",                // Empty last element.
           "URI=a,,URI=b",          // Empty element.
           "Ke\"y=a",               // Quote in a key.
       }) {
    EXPECT_FALSE(ParseXfcc(header).ok()) << header;
    EXPECT_EQ(XfccCallerUri(header), "") << header;
  }
}

TEST(ParseXfccTest, ErrorsNameTheOffsetNotTheContents) {
  absl::Status status = ParseXfcc("URI=\"spiffe://secret-looking").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().find("secret-looking"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("unclosed quote"), absl::string_view::npos) << status;
}

TEST(ParseXfccTest, RefusesHeadersBeyondTheBounds) {
  EXPECT_FALSE(ParseXfcc(std::string(kMaxXfccBytes + 1, 'a')).ok());
  std::string many;
  for (size_t i = 0; i <= kMaxXfccElements; ++i) many += i == 0 ? "URI=a" : ",URI=a";
  EXPECT_FALSE(ParseXfcc(many).ok());
}

TEST(XfccCallerUriTest, TakesTheUriOfTheLastElement) {
  EXPECT_EQ(XfccCallerUri("By=spiffe://cluster.local/ns/gw/sa/gateway;Hash=abc;"
                          "URI=spiffe://cluster.local/ns/shop/sa/checkout"),
            "spiffe://cluster.local/ns/shop/sa/checkout");
  EXPECT_EQ(XfccCallerUri("URI=spiffe://a/ns/x/sa/first;Subject=\"CN=a,O=b\","
                          "Hash=1;URI=\"spiffe://a/ns/y/sa/second\""),
            "spiffe://a/ns/y/sa/second");
  EXPECT_EQ(XfccCallerUri("Hash=abc;Subject=\"CN=x\""), "");
  // The last element has no URI: no caller, even though an earlier one has.
  EXPECT_EQ(XfccCallerUri("URI=spiffe://a/ns/x/sa/first,Hash=2"), "");
}

// The issue's attack: under APPEND_FORWARD the caller's own header comes
// first and the sidecar appends `,<its element>`. An unclosed quote in the
// caller's part used to swallow the sidecar's comma, so the whole header
// read as one element whose first URI was the attacker's choice.
TEST(XfccCallerUriTest, AnUnclosedQuoteInTheCallersPartNamesNobody) {
  const std::string forged = "URI=spiffe://cluster.local/ns/admin/sa/root;Subject=\"";
  const std::string sidecar =
      "By=spiffe://cluster.local/ns/gw/sa/gateway;Hash=1;"
      "URI=spiffe://cluster.local/ns/batch/sa/job";
  const std::string header = forged + "," + sidecar;
  EXPECT_EQ(XfccCallerUri(header), "");
  EXPECT_FALSE(ParseXfcc(header).ok());
  // A well-formed forged element before the sidecar's is simply not the last.
  EXPECT_EQ(XfccCallerUri("URI=spiffe://cluster.local/ns/admin/sa/root," + sidecar),
            "spiffe://cluster.local/ns/batch/sa/job");
  // Nor does a forged element without a URI lend the sidecar's its own.
  EXPECT_EQ(XfccCallerUri("Hash=forged;Subject=\"CN=root\"," + sidecar),
            "spiffe://cluster.local/ns/batch/sa/job");
}

TEST(ParseXfccTest, AnyBytesAreSafe) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_FALSE(ParseXfcc(bytes).ok());
  EXPECT_EQ(XfccCallerUri(std::string("URI=a\0b", 7)), std::string("a\0b", 3));
}

}  // namespace
}  // namespace posthog_gateway
