// posthog: a command-line client of the PostHog gRPC gateway.
//
//   posthog [--target=HOST:PORT] [--project=ALIAS] [--timeout=10s]
//           [--request_id=ID] [--geoip=on|off] COMMAND [ARGUMENTS]
//
// Prints each response as JSON on stdout. On failure prints
// `error: <CODE>: <message>` and the google.rpc details on stderr. Exit
// status: 0 ok, 1 the call failed, 2 usage error. `posthog --help` lists the
// commands (client/commands.cc) and flags.

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/commands.h"
#include "client/gateway_client.h"

ABSL_FLAG(std::string, target, "localhost:50051",
          "The gateway's address in gRPC name syntax (host:port, dns:///host:port).");
ABSL_FLAG(std::string, project, "",
          "The project alias the request acts on; empty means the gateway's "
          "default project.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "The call's deadline, e.g. 500ms, 10s, 1m; inf for none.");
ABSL_FLAG(std::string, request_id, "",
          "Sent as the x-request-id metadata, to find the call in the "
          "gateway's logs; none when empty.");
ABSL_FLAG(bool, tls, false, "Connect with TLS instead of plaintext (h2c).");
ABSL_FLAG(std::string, ca_file, "",
          "With --tls, a PEM file of the CAs that sign the gateway's "
          "certificate; the system roots when empty.");
ABSL_FLAG(std::string, cert_file, "",
          "With --tls, this caller's PEM certificate chain, for a gateway that "
          "requires client certificates (with --key_file).");
ABSL_FLAG(std::string, key_file, "", "With --cert_file, its PEM private key.");
ABSL_FLAG(std::string, geoip, "",
          "Whether PostHog geolocates captured events and flag evaluations: "
          "on or off; empty for the project's default (off, as in PostHog's "
          "server SDKs).");

namespace posthog_client {
namespace {

constexpr char kProgram[] = "posthog";
constexpr char kVersion[] = "0.1.0";

// The flags ParseCommandLine accepts, in the order --help lists them. The
// registry hands out mutable handles by name only.
std::vector<absl::CommandLineFlag*> CliFlags() {
  std::vector<absl::CommandLineFlag*> flags;
  for (const absl::CommandLineFlag* flag : {
           &absl::GetFlagReflectionHandle(FLAGS_target),
           &absl::GetFlagReflectionHandle(FLAGS_project),
           &absl::GetFlagReflectionHandle(FLAGS_timeout),
           &absl::GetFlagReflectionHandle(FLAGS_request_id),
           &absl::GetFlagReflectionHandle(FLAGS_tls),
           &absl::GetFlagReflectionHandle(FLAGS_ca_file),
           &absl::GetFlagReflectionHandle(FLAGS_cert_file),
           &absl::GetFlagReflectionHandle(FLAGS_key_file),
           &absl::GetFlagReflectionHandle(FLAGS_geoip),
       }) {
    flags.push_back(absl::FindCommandLineFlag(flag->Name()));
  }
  return flags;
}

GatewayClientOptions OptionsFromFlags() {
  GatewayClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.use_tls = absl::GetFlag(FLAGS_tls);
  options.ca_file = absl::GetFlag(FLAGS_ca_file);
  options.cert_file = absl::GetFlag(FLAGS_cert_file);
  options.key_file = absl::GetFlag(FLAGS_key_file);
  if (const std::string id = absl::GetFlag(FLAGS_request_id); !id.empty()) {
    options.metadata.emplace_back("x-request-id", id);
  }
  options.user_agent_prefix = std::string(kProgram) + "/" + kVersion;
  return options;
}

int Main(int argc, char** argv) {
  const std::vector<absl::CommandLineFlag*> flags = CliFlags();
  const absl::StatusOr<CommandLine> command_line =
      ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc), flags);
  if (!command_line.ok()) {
    return ReportUsageError(kProgram, command_line.status(), std::cerr);
  }
  if (command_line->help) {
    std::cout << Usage(kProgram, Commands(), flags);
    return kExitOk;
  }
  const absl::StatusOr<ParsedCommand> parsed = ParseCommand(Commands(), command_line->positional);
  if (!parsed.ok()) return ReportUsageError(kProgram, parsed.status(), std::cerr);

  // Bad option values (a negative timeout, an unreadable CA file) are the
  // command line's fault too.
  absl::StatusOr<std::unique_ptr<GatewayClient>> client = GatewayClient::Create(OptionsFromFlags());
  if (!client.ok()) return ReportUsageError(kProgram, client.status(), std::cerr);

  const absl::StatusOr<posthog::v1::GeoipMode> geoip = ParseGeoip(absl::GetFlag(FLAGS_geoip));
  if (!geoip.ok()) return ReportUsageError(kProgram, geoip.status(), std::cerr);

  CommandEnv env;
  env.client = client->get();
  env.project = absl::GetFlag(FLAGS_project);
  env.geoip = *geoip;
  return RunCommand(kProgram, *parsed, env, std::cout, std::cerr);
}

}  // namespace
}  // namespace posthog_client

int main(int argc, char** argv) { return posthog_client::Main(argc, argv); }
