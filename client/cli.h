#ifndef CLIENT_CLI_H_
#define CLIENT_CLI_H_

// The machinery of the `posthog` command-line tool, apart from its commands
// (client/commands.h) and its flag definitions (client/posthog_cli.cc):
// reading flags and positional words, finding the command in a table,
// printing usage, and running a command to an exit status.
//
// A command is one row of a table — its words (`user get`), its arguments,
// a one-line summary and a handler — so adding one is adding a row and a
// function.
//
// Exit statuses: kExitOk (0), kExitRpcError (1: the call failed; the error
// and its details are on stderr), kExitUsage (2: bad flags, command or
// arguments).
//
// Everything here is a pure function of its arguments, except that
// ParseCommandLine sets the values of the flags it is given. Not thread-safe
// for that reason: call it once, from main.

#include <ostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/gateway_client.h"
#include "posthog/v1/common.pb.h"

namespace posthog_client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;
inline constexpr int kExitUsage = 2;

// UsageError returns an INVALID_ARGUMENT status marked as the caller's
// mistake on the command line (exit status 2), as opposed to an error the
// gateway returned (exit status 1).
absl::Status UsageError(absl::string_view message);

// IsUsageError is true for statuses made by UsageError.
bool IsUsageError(const absl::Status& status);

// What every command handler gets besides its arguments.
struct CommandEnv {
  // The client to call the gateway with; not owned, never null.
  const GatewayClient* client = nullptr;
  // The project alias for the request's `project` field (--project); empty
  // means the gateway's default project.
  std::string project;
  // GeoIP for captured events and flag evaluations (--geoip).
  posthog::v1::GeoipMode geoip = posthog::v1::GEOIP_MODE_UNSPECIFIED;
};

// ParseGeoip reads --geoip: "on", "off", or empty for the project's default;
// anything else is a UsageError.
absl::StatusOr<posthog::v1::GeoipMode> ParseGeoip(absl::string_view text);

// A CommandHandler runs one command with its positional arguments (already
// counted against the table), writes its result to `out` and returns the
// call's status: a UsageError for bad arguments, otherwise the RPC's status.
using CommandHandler = absl::Status (*)(const CommandEnv& env, const std::vector<std::string>& args,
                                        std::ostream& out);

// Command is one row of the command table.
struct Command {
  // The command's words separated by single spaces, e.g. "user get".
  std::string name;
  // The usage of its positional arguments, e.g. "EVENT DISTINCT_ID"; empty
  // when it takes none.
  std::string arguments;
  // How many positional arguments it takes; max_args -1 means no limit.
  int min_args = 0;
  int max_args = 0;
  // One line for the usage text.
  std::string summary;
  CommandHandler handler = nullptr;
};

// The command line split into flags (already applied) and positional words.
struct CommandLine {
  // True when --help, -h or the single word `help` was given.
  bool help = false;
  std::vector<std::string> positional;
};

// ParseCommandLine reads `args` (argv without the program name) the way
// absl's flag parser does — `--name=value`, `--name value`, `-name`, bool
// `--name` / `--noname`, flags anywhere, `--` ending flags — but accepts only
// `flags`, sets them, and reports every mistake as a UsageError instead of
// exiting.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             absl::Span<absl::CommandLineFlag* const> flags);

// A command found in a table, with its positional arguments.
struct ParsedCommand {
  const Command* command = nullptr;  // points into the table
  std::vector<std::string> args;
};

// ParseCommand finds the command whose words begin `positional` (the longest
// such one) and checks its argument count. UsageErrors: no command, unknown
// command, wrong number of arguments.
absl::StatusOr<ParsedCommand> ParseCommand(absl::Span<const Command> commands,
                                           const std::vector<std::string>& positional);

// Usage returns the help text: synopsis, the command table, `flags` with
// their help and defaults, and the exit statuses. Ends with a newline.
std::string Usage(absl::string_view program, absl::Span<const Command> commands,
                  absl::Span<absl::CommandLineFlag* const> flags);

// RunCommand runs `parsed` and returns the exit status. On failure it writes
// to `err`: for a usage error `error: <message>` and a hint to run
// `<program> --help`; for an RPC error FormatRpcError's lines.
int RunCommand(absl::string_view program, const ParsedCommand& parsed, const CommandEnv& env,
               std::ostream& out, std::ostream& err);

// ReportUsageError writes `error: <message>` and the --help hint for a
// usage error found before a command ran, and returns kExitUsage.
int ReportUsageError(absl::string_view program, const absl::Status& status, std::ostream& err);

}  // namespace posthog_client

#endif  // CLIENT_CLI_H_
