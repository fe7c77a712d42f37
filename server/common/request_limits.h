#ifndef SERVER_COMMON_REQUEST_LIMITS_H_
#define SERVER_COMMON_REQUEST_LIMITS_H_

// The limits of one request's repeated fields. Each bounds what one call can
// make the gateway hold in memory or spend of PostHog's budget, whatever the
// receive size allows (a message of a few MiB can hold a million short
// keys). The proto comment of each field states its limit; over it the call
// is INVALID_ARGUMENT with a BadRequest naming the field and the limit, and
// nothing is done.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace posthog_gateway {

// Flag keys of one EvaluateFlags request.
inline constexpr int64_t kMaxEvaluateFlagsKeys = 1000;

// Events of one BatchCaptureEvents request or StreamCaptureEvents message
// (PostHog's own batches to /batch/ close at 1000 events too).
inline constexpr int64_t kMaxCaptureEventsPerMessage = 1000;

// Properties set plus unset by one UpdatePersonProperties: each is one
// PostHog request under the project's persons budget (240 a minute by
// default), so one call can spend at most a twelfth of it.
inline constexpr int64_t kMaxPersonPropertyChanges = 20;

// CheckCountLimit is INVALID_ARGUMENT, with a BadRequest violation on
// `field` stating `max`, when `count` > `max`; `rpc` starts the message.
// OK otherwise.
absl::Status CheckCountLimit(absl::string_view rpc, absl::string_view field, int64_t count,
                             int64_t max);

}  // namespace posthog_gateway

#endif  // SERVER_COMMON_REQUEST_LIMITS_H_
