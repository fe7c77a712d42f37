#include "client/cli.h"

#include <algorithm>
#include <cstddef>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/rpc_error.h"

namespace posthog_client {
namespace {

// The payload that tells a usage error from an INVALID_ARGUMENT the gateway
// returned. Its value is irrelevant.
constexpr absl::string_view kUsageErrorPayloadUrl = "posthog-cli/usage-error";

absl::CommandLineFlag* FindFlag(absl::Span<absl::CommandLineFlag* const> flags,
                                absl::string_view name) {
  for (absl::CommandLineFlag* flag : flags) {
    if (flag->Name() == name) return flag;
  }
  return nullptr;
}

std::vector<absl::string_view> Words(absl::string_view name) {
  return absl::StrSplit(name, ' ', absl::SkipEmpty());
}

std::string DescribeArgumentCount(const Command& command) {
  if (command.max_args == 0) return "takes no arguments";
  return absl::StrCat("takes ", command.arguments);
}

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsageErrorPayloadUrl, absl::Cord());
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsageErrorPayloadUrl).has_value();
}

absl::StatusOr<posthog::v1::GeoipMode> ParseGeoip(absl::string_view text) {
  if (text.empty()) return posthog::v1::GEOIP_MODE_UNSPECIFIED;
  if (text == "on") return posthog::v1::GEOIP_MODE_ENABLED;
  if (text == "off") return posthog::v1::GEOIP_MODE_DISABLED;
  return UsageError(
      absl::StrCat("--geoip must be on or off (or empty for the project's default), not ", text));
}

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             absl::Span<absl::CommandLineFlag* const> flags) {
  CommandLine command_line;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_ended || arg.size() < 2 || arg[0] != '-') {
      command_line.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    absl::string_view text = arg;
    text.remove_prefix(absl::StartsWith(text, "--") ? 2 : 1);
    const size_t equals = text.find('=');
    const bool has_value = equals != absl::string_view::npos;
    const absl::string_view name = text.substr(0, equals);
    std::string value(has_value ? text.substr(equals + 1) : "");

    if (name == "help" || name == "h") {
      command_line.help = true;
      continue;
    }
    absl::CommandLineFlag* flag = FindFlag(flags, name);
    if (flag == nullptr) {
      // `--noverbose` is `--verbose=false`, for bool flags only.
      absl::CommandLineFlag* negated =
          absl::StartsWith(name, "no") ? FindFlag(flags, name.substr(2)) : nullptr;
      if (negated == nullptr || !negated->IsOfType<bool>()) {
        return UsageError(absl::StrCat("unknown flag --", name));
      }
      if (has_value) {
        return UsageError(absl::StrCat("--", name, " takes no value"));
      }
      flag = negated;
      value = "false";
    } else if (!has_value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return UsageError(absl::StrCat("--", name, " needs a value"));
      }
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return UsageError(absl::StrCat("--", flag->Name(), ": ", error));
    }
  }
  if (command_line.positional.size() == 1 && command_line.positional[0] == "help") {
    command_line.help = true;
    command_line.positional.clear();
  }
  return command_line;
}

absl::StatusOr<ParsedCommand> ParseCommand(absl::Span<const Command> commands,
                                           const std::vector<std::string>& positional) {
  if (positional.empty()) return UsageError("no command given");
  const Command* best = nullptr;
  size_t best_words = 0;
  for (const Command& command : commands) {
    const std::vector<absl::string_view> words = Words(command.name);
    if (words.size() <= best_words || words.size() > positional.size()) continue;
    if (std::equal(words.begin(), words.end(), positional.begin())) {
      best = &command;
      best_words = words.size();
    }
  }
  if (best == nullptr) {
    return UsageError(absl::StrCat("unknown command \"", absl::StrJoin(positional, " "), "\""));
  }
  ParsedCommand parsed;
  parsed.command = best;
  parsed.args.assign(positional.begin() + best_words, positional.end());
  const int count = static_cast<int>(parsed.args.size());
  if (count < best->min_args || (best->max_args >= 0 && count > best->max_args)) {
    return UsageError(absl::StrCat("\"", best->name, "\" ", DescribeArgumentCount(*best), ", got ",
                                   count, count == 1 ? " argument" : " arguments"));
  }
  return parsed;
}

std::string Usage(absl::string_view program, absl::Span<const Command> commands,
                  absl::Span<absl::CommandLineFlag* const> flags) {
  std::string text = absl::StrCat(
      "Usage: ", program, " [flags] COMMAND [ARGUMENTS]\n\n",
      "Calls the PostHog gRPC gateway and prints each response as JSON.\n\n", "Commands:\n");
  size_t width = 0;
  std::vector<std::string> synopses;
  for (const Command& command : commands) {
    synopses.push_back(command.arguments.empty()
                           ? command.name
                           : absl::StrCat(command.name, " ", command.arguments));
    width = std::max(width, synopses.back().size());
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    absl::StrAppend(&text, "  ", synopses[i], std::string(width - synopses[i].size() + 2, ' '),
                    commands[i].summary, "\n");
  }
  absl::StrAppend(&text, "\nFlags:\n");
  for (const absl::CommandLineFlag* flag : flags) {
    absl::StrAppend(&text, "  --", flag->Name(), "\n      ", flag->Help(), " (default: \"",
                    flag->DefaultValue(), "\")\n");
  }
  absl::StrAppend(&text, "  --help\n      Print this text.\n",
                  "\nExit status: 0 ok; 1 the call failed (the error and its "
                  "details go to stderr); 2 usage error.\n");
  return text;
}

int ReportUsageError(absl::string_view program, const absl::Status& status, std::ostream& err) {
  err << "error: " << status.message() << "\nRun '" << program << " --help' for usage.\n";
  return kExitUsage;
}

int RunCommand(absl::string_view program, const ParsedCommand& parsed, const CommandEnv& env,
               std::ostream& out, std::ostream& err) {
  const absl::Status status = parsed.command->handler(env, parsed.args, out);
  if (status.ok()) return kExitOk;
  if (IsUsageError(status)) return ReportUsageError(program, status, err);
  err << FormatRpcError(status) << "\n";
  return kExitRpcError;
}

}  // namespace posthog_client
