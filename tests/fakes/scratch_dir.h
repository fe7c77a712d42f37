#ifndef TESTS_FAKES_SCRATCH_DIR_H_
#define TESTS_FAKES_SCRATCH_DIR_H_

// A fresh, empty directory for the running test, under ::testing::TempDir()
// (Bazel's $TEST_TMPDIR, which Bazel creates per test target and removes
// after the run), so that no test writes to /tmp or shares files with another:
//
//   dir_ = test_support::ScratchDir("spool");
//     // -> $TEST_TMPDIR/SpoolTest.ReplaysAfterRestart.spool, empty
//
// The name is the test's suite, name and `label`, so that two directories of
// one test differ by label and a failing test's files are easy to find. Any
// leftover of an earlier test of the same name is removed first.

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace posthog_gateway::test_support {

inline std::string ScratchDir(absl::string_view label = "scratch") {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = test == nullptr
                         ? std::string(label)
                         : absl::StrCat(test->test_suite_name(), ".", test->name(), ".", label);
  // Parameterised tests are named "Suite/Test/0".
  absl::StrReplaceAll({{"/", "_"}}, &name);
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_SCRATCH_DIR_H_
