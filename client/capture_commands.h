#ifndef CLIENT_CAPTURE_COMMANDS_H_
#define CLIENT_CAPTURE_COMMANDS_H_

// The `capture ...` commands of the `posthog` tool (rows in
// client/commands.cc). JSON arguments are objects, e.g. '{"plan": "pro"}'; a
// malformed one is a UsageError. Each prints the RPC's response as JSON.

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli.h"

namespace posthog_client {

// `capture event EVENT DISTINCT_ID [PROPERTIES_JSON]`: CaptureEvent.
absl::Status CaptureEventCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                 std::ostream& out);
// `capture identify DISTINCT_ID [SET_JSON [ANONYMOUS_ID]]`: Identify.
absl::Status IdentifyCommand(const CommandEnv& env, const std::vector<std::string>& args,
                             std::ostream& out);
// `capture alias DISTINCT_ID ALIAS`: Alias.
absl::Status AliasCommand(const CommandEnv& env, const std::vector<std::string>& args,
                          std::ostream& out);
// `capture group GROUP_TYPE GROUP_KEY [PROPERTIES_JSON]`: GroupIdentify.
absl::Status GroupIdentifyCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                  std::ostream& out);
// `capture set DISTINCT_ID SET_JSON`: SetPersonProperties.
absl::Status CaptureSetCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out);

}  // namespace posthog_client

#endif  // CLIENT_CAPTURE_COMMANDS_H_
