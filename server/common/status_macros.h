#ifndef SERVER_COMMON_STATUS_MACROS_H_
#define SERVER_COMMON_STATUS_MACROS_H_

// Debian's Abseil 20220623 has neither ABSL_RETURN_IF_ERROR nor
// ABSL_ASSIGN_OR_RETURN; these are the two we use, with the same meaning.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// RETURN_IF_ERROR(expr) returns the status `expr` evaluates to unless it is OK.
#define RETURN_IF_ERROR(expr)                              \
  do {                                                     \
    const ::absl::Status _status_to_return = (expr);       \
    if (!_status_to_return.ok()) return _status_to_return; \
  } while (0)

#define STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define STATUS_MACROS_CONCAT_(a, b) STATUS_MACROS_CONCAT_INNER_(a, b)

// ASSIGN_OR_RETURN(lhs, expr) evaluates `expr` (an absl::StatusOr<T>),
// returns its status if not OK, and otherwise assigns its value to `lhs`,
// which may be a declaration: `ASSIGN_OR_RETURN(auto user, GetUser());`.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(STATUS_MACROS_CONCAT_(_status_or_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)        \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#endif  // SERVER_COMMON_STATUS_MACROS_H_
