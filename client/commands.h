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
#include "client/rpc_error.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/sync_stream.h"

namespace posthog_client {

// Commands returns the command table, in the order the usage text lists it.
absl::Span<const Command> Commands();

// PrintJson writes `message` to `out` as indented JSON with the .proto field
// names, then a newline. INTERNAL if the message cannot be converted.
absl::Status PrintJson(const google::protobuf::Message& message, std::ostream& out);

// PrintJsonLine writes `message` to `out` as one line of compact JSON with
// the .proto field names (JSON Lines). INTERNAL if it cannot be converted.
absl::Status PrintJsonLine(const google::protobuf::Message& message, std::ostream& out);

// PrintStream prints each message of a server-streaming call as it arrives
// (PrintJsonLine), then returns the call's status with its rich error
// details kept (FromGrpcStatus).
template <typename Response>
absl::Status PrintStream(grpc::ClientReaderInterface<Response>& reader, std::ostream& out) {
  Response response;
  while (reader.Read(&response)) {
    absl::Status printed = PrintJsonLine(response, out);
    if (!printed.ok()) return printed;
  }
  return FromGrpcStatus(reader.Finish());
}

// `user get`: UserService.GetCurrentUser for env.project.
absl::Status GetUserCommand(const CommandEnv& env, const std::vector<std::string>& args,
                            std::ostream& out);

// `persons list [KEY=VALUE...]`: PersonService.ListPersons, one JSON object
// per line (JSON Lines) as the stream arrives; `resume=TOKEN` continues.
absl::Status ListPersonsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                std::ostream& out);

// `persons get REF`: PersonService.GetPerson; REF is uuid=U, id=N or
// distinct_id=D.
absl::Status GetPersonCommand(const CommandEnv& env, const std::vector<std::string>& args,
                              std::ostream& out);

// `persons delete REF [delete_events]`: PersonService.DeletePerson.
absl::Status DeletePersonCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                 std::ostream& out);

// `persons set REF KEY=VALUE...`: UpdatePersonProperties with `set`; each
// VALUE is read as JSON when it parses (3, true, {"a":1}), else as a string.
absl::Status SetPersonPropertiesCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                        std::ostream& out);

// `persons unset REF KEY...`: UpdatePersonProperties with `unset`.
absl::Status UnsetPersonPropertiesCommand(const CommandEnv& env,
                                          const std::vector<std::string>& args, std::ostream& out);

}  // namespace posthog_client

#endif  // CLIENT_COMMANDS_H_
