#ifndef EMULATOR_HANDLER_H_
#define EMULATOR_HANDLER_H_

// The shape every emulator route handler has, and the per-request context
// the server gives it (route name for faults and the request log, and the
// auth method the handler found).

#include <functional>
#include <string>

#include "emulator/auth.h"
#include "httplib.h"

namespace posthog_emulator {

struct RequestContext {
  std::string route;
  AuthMethod auth = AuthMethod::kNone;
};

using RouteHandler =
    std::function<void(const httplib::Request&, httplib::Response&, RequestContext&)>;

}  // namespace posthog_emulator

#endif  // EMULATOR_HANDLER_H_
