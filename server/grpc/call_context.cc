#include "server/grpc/call_context.h"

#include <chrono>
#include <string>

#include "absl/time/time.h"

namespace posthog_gateway {
namespace {

// Headers forwarded from the incoming call to PostHog so that traces join.
constexpr const char* kTraceHeaders[] = {
    "traceparent", "tracestate",        "x-request-id", "b3",         "x-b3-traceid",
    "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
};

}  // namespace

CallContext CallContextFromServer(grpc::ServerContextBase* context) {
  CallContext call;
  const auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    call.deadline = absl::FromChrono(deadline);
  }
  call.is_cancelled = [context] { return context->IsCancelled(); };
  const auto& metadata = context->client_metadata();
  for (const char* name : kTraceHeaders) {
    auto it = metadata.find(name);
    if (it != metadata.end()) {
      call.trace_headers.emplace_back(name, std::string(it->second.data(), it->second.size()));
    }
  }
  return call;
}

}  // namespace posthog_gateway
