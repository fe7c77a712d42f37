#ifndef CLIENT_COMMANDS_H_
#define CLIENT_COMMANDS_H_

// The commands of the `posthog` tool: the table (one row per command) and
// their handlers. Adding a command is one handler and one row; the
// machinery that parses, dispatches and reports is in client/cli.h.
//
// Handlers print the RPC's response as JSON (protobuf's JSON mapping with
// the .proto field names, indented) followed by a newline. They are
// thread-compatible: they share nothing but the GatewayClient, which is
// thread-safe.

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/cli.h"
#include "google/protobuf/message.h"

namespace posthog_client {

// Commands returns the command table, in the order the usage text lists it.
absl::Span<const Command> Commands();

// PrintJson writes `message` to `out` as indented JSON with the .proto field
// names, then a newline. INTERNAL if the message cannot be converted.
absl::Status PrintJson(const google::protobuf::Message& message,
                       std::ostream& out);

// `user get`: UserService.GetCurrentUser for env.project.
absl::Status GetUserCommand(const CommandEnv& env,
                            const std::vector<std::string>& args,
                            std::ostream& out);

}  // namespace posthog_client

#endif  // CLIENT_COMMANDS_H_
