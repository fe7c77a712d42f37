// The gateway's ErrorInfo reasons are one vocabulary: declared once
// (server/common/error_reasons.h), each documented in docs/errors.md, and no
// source file spells a reason of its own.

#include "server/common/error_reasons.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "re2/re2.h"

namespace posthog_gateway {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot read " << path;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The reasons the documentation's tables name: every cell that is one
// UPPER_SNAKE_CASE word in backticks, except gRPC's code names.
std::set<std::string> DocumentedReasons(const std::string& markdown) {
  static const std::set<std::string> kGrpcCodes = {"CANCELLED",
                                                   "UNKNOWN",
                                                   "INVALID_ARGUMENT",
                                                   "DEADLINE_EXCEEDED",
                                                   "NOT_FOUND",
                                                   "ALREADY_EXISTS",
                                                   "PERMISSION_DENIED",
                                                   "RESOURCE_EXHAUSTED",
                                                   "FAILED_PRECONDITION",
                                                   "ABORTED",
                                                   "OUT_OF_RANGE",
                                                   "UNIMPLEMENTED",
                                                   "INTERNAL",
                                                   "UNAVAILABLE",
                                                   "DATA_LOSS",
                                                   "UNAUTHENTICATED"};
  static const RE2 kCell(R"(`([A-Z][A-Z_]+[A-Z])`)");
  std::set<std::string> reasons;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    if (!absl::StartsWith(line, "|")) continue;
    for (absl::string_view cell : absl::StrSplit(line, '|')) {
      std::string reason;
      const absl::string_view trimmed = absl::StripAsciiWhitespace(cell);
      if (RE2::FullMatch(re2::StringPiece(trimmed.data(), trimmed.size()), kCell, &reason) &&
          kGrpcCodes.count(reason) == 0) {
        reasons.insert(reason);
      }
    }
  }
  return reasons;
}

TEST(ErrorReasonsTest, EveryReasonIsDocumentedAndEveryDocumentedReasonIsDeclared) {
  const std::set<std::string> documented = DocumentedReasons(ReadFile("docs/errors.md"));
  std::set<std::string> declared;
  for (absl::string_view reason : reasons::kAll) {
    EXPECT_TRUE(declared.insert(std::string(reason)).second) << reason << " is declared twice";
    EXPECT_EQ(documented.count(std::string(reason)), 1u)
        << reason << " is not in docs/errors.md's tables";
  }
  for (const std::string& reason : documented) {
    EXPECT_EQ(declared.count(reason), 1u)
        << reason << " is documented but not declared in error_reasons.h";
  }
}

// A reason spelled as a string literal in a call that attaches an ErrorInfo
// would escape the vocabulary (and its documentation).
TEST(ErrorReasonsTest, NoSourceSpellsAReasonOutsideTheHeader) {
  std::ifstream list("tests/server/server_sources.txt");
  ASSERT_TRUE(list.good());
  static const RE2 kLiteral(R"re(AttachErrorInfo\(\s*\w+,\s*"([A-Z_]+)")re");
  int files = 0;
  for (std::string path; std::getline(list, path);) {
    if (path.empty()) continue;
    ++files;
    const std::string text = ReadFile(path);
    re2::StringPiece input(text);
    std::string reason;
    while (RE2::FindAndConsume(&input, kLiteral, &reason)) {
      ADD_FAILURE() << path << " attaches the reason \"" << reason
                    << "\" as a literal: declare it in server/common/error_reasons.h";
    }
  }
  EXPECT_GT(files, 50);
}

}  // namespace
}  // namespace posthog_gateway
