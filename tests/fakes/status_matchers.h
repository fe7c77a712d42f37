#ifndef TESTS_FAKES_STATUS_MATCHERS_H_
#define TESTS_FAKES_STATUS_MATCHERS_H_

// gMock matchers for absl::Status, absl::StatusOr<T> and grpc::Status, the
// ones Abseil ships in later releases (Debian's 20220623 has none):
//
//   EXPECT_THAT(spool->Append(records), IsOk());
//   EXPECT_THAT(Call(...), StatusIs(grpc::StatusCode::PERMISSION_DENIED,
//                                   HasSubstr("flag_evaluation")));
//   EXPECT_THAT(ParseUuid("x"), StatusIs(absl::StatusCode::kInvalidArgument));
//   EXPECT_THAT(Load(path), IsOkAndHolds(Field(&Config::port, 50051)));
//
// A failure prints the whole status (code and message), so that a test
// says why it failed without a `<< status` of its own.

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "grpcpp/support/status.h"

namespace posthog_gateway::test_support {
namespace status_internal {

// The code and message of each kind of status, as the matchers read them.
inline absl::StatusCode CodeOf(const absl::Status& status) { return status.code(); }
inline grpc::StatusCode CodeOf(const grpc::Status& status) { return status.error_code(); }
inline std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }
inline std::string MessageOf(const grpc::Status& status) { return status.error_message(); }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}
inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
inline const grpc::Status& StatusOf(const grpc::Status& status) { return status; }

inline std::string Describe(const absl::Status& status) { return status.ToString(); }
inline std::string Describe(const grpc::Status& status) {
  return "gRPC code " + std::to_string(static_cast<int>(status.error_code())) + ": " +
         status.error_message();
}

template <typename Code>
class StatusIsMatcher {
 public:
  using is_gtest_matcher = void;

  StatusIsMatcher(Code code, ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  template <typename StatusLike>
  bool MatchAndExplain(const StatusLike& value, ::testing::MatchResultListener* listener) const {
    const auto& status = StatusOf(value);
    *listener << "which is " << Describe(status);
    return CodeOf(status) == code_ && message_.Matches(MessageOf(status));
  }

  void DescribeTo(std::ostream* os) const {
    *os << "has code " << static_cast<int>(code_) << " and a message that ";
    message_.DescribeTo(os);
  }

  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not have code " << static_cast<int>(code_) << " or a message that ";
    message_.DescribeTo(os);
  }

 private:
  Code code_;
  ::testing::Matcher<const std::string&> message_;
};

class IsOkMatcher {
 public:
  using is_gtest_matcher = void;

  template <typename StatusLike>
  bool MatchAndExplain(const StatusLike& value, ::testing::MatchResultListener* listener) const {
    const auto& status = StatusOf(value);
    if (status.ok()) return true;
    *listener << "which is " << Describe(status);
    return false;
  }

  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

template <typename Inner>
class IsOkAndHoldsMatcher {
 public:
  using is_gtest_matcher = void;

  explicit IsOkAndHoldsMatcher(Inner inner) : inner_(std::move(inner)) {}

  template <typename T>
  bool MatchAndExplain(const absl::StatusOr<T>& value,
                       ::testing::MatchResultListener* listener) const {
    if (!value.ok()) {
      *listener << "which is " << Describe(value.status());
      return false;
    }
    return ::testing::SafeMatcherCast<const T&>(inner_).MatchAndExplain(*value, listener);
  }

  void DescribeTo(std::ostream* os) const { *os << "is OK and holds a value that matches"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK or holds another value"; }

 private:
  Inner inner_;
};

}  // namespace status_internal

// IsOk matches an OK absl::Status, absl::StatusOr or grpc::Status.
inline status_internal::IsOkMatcher IsOk() { return {}; }

// StatusIs matches a status (of any of the three kinds) with `code` and,
// optionally, a message matching `message`.
inline status_internal::StatusIsMatcher<absl::StatusCode> StatusIs(
    absl::StatusCode code, ::testing::Matcher<const std::string&> message = ::testing::_) {
  return {code, std::move(message)};
}
inline status_internal::StatusIsMatcher<grpc::StatusCode> StatusIs(
    grpc::StatusCode code, ::testing::Matcher<const std::string&> message = ::testing::_) {
  return {code, std::move(message)};
}

// IsOkAndHolds matches an OK absl::StatusOr whose value matches `inner`.
template <typename Inner>
status_internal::IsOkAndHoldsMatcher<Inner> IsOkAndHolds(Inner inner) {
  return status_internal::IsOkAndHoldsMatcher<Inner>(std::move(inner));
}

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_STATUS_MATCHERS_H_
