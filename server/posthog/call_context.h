#ifndef SERVER_POSTHOG_CALL_CONTEXT_H_
#define SERVER_POSTHOG_CALL_CONTEXT_H_

#include <functional>

#include "absl/time/time.h"
#include "server/http/http_client.h"

namespace posthog_gateway {

// CallContext is what a call to PostHog inherits from the gRPC call that
// caused it: its deadline, a way to notice that the caller went away, and the
// trace headers (W3C traceparent/tracestate, x-request-id, B3) that let spans
// join across the hop.
struct CallContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> is_cancelled;
  HttpHeaders trace_headers;
};

}  // namespace posthog_gateway

#endif  // SERVER_POSTHOG_CALL_CONTEXT_H_
