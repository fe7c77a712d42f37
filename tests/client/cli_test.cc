#include "client/cli.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_target, "localhost:1", "Where to call.");
ABSL_FLAG(absl::Duration, test_timeout, absl::Seconds(10), "The deadline.");
ABSL_FLAG(bool, test_tls, false, "Use TLS.");

namespace posthog_client {
namespace {

absl::Status PrintOk(const CommandEnv&, const std::vector<std::string>& args, std::ostream& out) {
  out << "ran with " << args.size() << " arguments\n";
  return absl::OkStatus();
}

absl::Status FailWithUsage(const CommandEnv&, const std::vector<std::string>&, std::ostream&) {
  return UsageError("--properties: not a JSON object");
}

absl::Status FailWithRpcError(const CommandEnv&, const std::vector<std::string>&,
                              std::ostream& out) {
  out << "partial";
  return absl::UnavailableError("PostHog answered 503");
}

const std::vector<Command>& TestCommands() {
  static const auto* const kCommands = new std::vector<Command>{
      {"user get", "", 0, 0, "Get the user.", &PrintOk},
      {"flags", "[FLAG...]", 0, -1, "List flags.", &PrintOk},
      {"flags evaluate", "DISTINCT_ID [FLAG]", 1, 2, "Evaluate flags.", &PrintOk},
      {"capture event", "EVENT DISTINCT_ID", 2, 2, "Send an event.", &FailWithUsage},
      {"persons list", "", 0, 0, "List persons.", &FailWithRpcError},
  };
  return *kCommands;
}

// Fixture owning the test flags; FlagSaver restores their values after each
// test.
class CommandLineTest : public testing::Test {
 protected:
  absl::StatusOr<CommandLine> Parse(const std::vector<std::string>& args) {
    return ParseCommandLine(args, flags_);
  }

  absl::FlagSaver saver_;
  const std::vector<absl::CommandLineFlag*> flags_ = {
      absl::FindCommandLineFlag("test_target"),
      absl::FindCommandLineFlag("test_timeout"),
      absl::FindCommandLineFlag("test_tls"),
  };
};

TEST_F(CommandLineTest, SetsFlagsInEveryFormAndKeepsPositionalOrder) {
  const absl::StatusOr<CommandLine> line =
      Parse({"--test_target=gw:1", "user", "-test_timeout", "250ms", "--test_tls", "get"});

  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_FALSE(line->help);
  EXPECT_EQ(line->positional, (std::vector<std::string>{"user", "get"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_target), "gw:1");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_timeout), absl::Milliseconds(250));
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_tls));
}

TEST_F(CommandLineTest, NoPrefixTurnsBoolFlagOff) {
  ASSERT_TRUE(Parse({"--test_tls"}).ok());

  const absl::StatusOr<CommandLine> line = Parse({"--notest_tls"});

  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_tls));
}

TEST_F(CommandLineTest, DoubleDashEndsFlags) {
  const absl::StatusOr<CommandLine> line = Parse({"capture", "--", "--test_tls", "-"});

  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->positional, (std::vector<std::string>{"capture", "--test_tls", "-"}));
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_tls));
}

TEST_F(CommandLineTest, HelpInAnyFormAsksForHelp) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"user", "-help"}, {"help"}}) {
    const absl::StatusOr<CommandLine> line = Parse(args);
    ASSERT_TRUE(line.ok()) << line.status();
    EXPECT_TRUE(line->help) << args[0];
  }
}

TEST_F(CommandLineTest, UnknownFlagIsUsageError) {
  const absl::StatusOr<CommandLine> line = Parse({"--tagret=x", "user", "get"});

  EXPECT_TRUE(IsUsageError(line.status()));
  EXPECT_EQ(line.status().message(), "unknown flag --tagret");
}

TEST_F(CommandLineTest, BadValueIsUsageErrorNamingTheFlag) {
  const absl::StatusOr<CommandLine> line = Parse({"--test_timeout=soon"});

  EXPECT_TRUE(IsUsageError(line.status()));
  EXPECT_EQ(line.status().message(),
            "--test_timeout: Illegal value 'soon' specified for flag 'test_timeout'");
}

TEST_F(CommandLineTest, MissingValueIsUsageError) {
  const absl::StatusOr<CommandLine> line = Parse({"user", "--test_target"});

  EXPECT_TRUE(IsUsageError(line.status()));
  EXPECT_EQ(line.status().message(), "--test_target needs a value");
}

TEST_F(CommandLineTest, NegatedBoolWithValueIsUsageError) {
  const absl::StatusOr<CommandLine> line = Parse({"--notest_tls=true"});

  EXPECT_TRUE(IsUsageError(line.status()));
  EXPECT_EQ(line.status().message(), "--notest_tls takes no value");
}

TEST_F(CommandLineTest, UsageListsCommandsFlagsAndExitStatuses) {
  EXPECT_EQ(Usage("posthog", TestCommands(), flags_),
            "Usage: posthog [flags] COMMAND [ARGUMENTS]\n"
            "\n"
            "Calls the PostHog gRPC gateway and prints each response as JSON.\n"
            "\n"
            "Commands:\n"
            "  user get                           Get the user.\n"
            "  flags [FLAG...]                    List flags.\n"
            "  flags evaluate DISTINCT_ID [FLAG]  Evaluate flags.\n"
            "  capture event EVENT DISTINCT_ID    Send an event.\n"
            "  persons list                       List persons.\n"
            "\n"
            "Flags:\n"
            "  --test_target\n"
            "      Where to call. (default: \"localhost:1\")\n"
            "  --test_timeout\n"
            "      The deadline. (default: \"10s\")\n"
            "  --test_tls\n"
            "      Use TLS. (default: \"false\")\n"
            "  --help\n"
            "      Print this text.\n"
            "\n"
            "Exit status: 0 ok; 1 the call failed (the error and its details go "
            "to stderr); 2 usage error.\n");
}

class CommandTableTest : public testing::Test {
 protected:
  absl::StatusOr<ParsedCommand> Parse(const std::vector<std::string>& positional) {
    return ParseCommand(TestCommands(), positional);
  }
};

TEST_F(CommandTableTest, FindsCommandAndItsArguments) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({"user", "get"});

  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command, &TestCommands()[0]);
  EXPECT_TRUE(parsed->args.empty());
}

TEST_F(CommandTableTest, PrefersLongestMatchingCommand) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({"flags", "evaluate", "u1", "beta"});

  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command->name, "flags evaluate");
  EXPECT_EQ(parsed->args, (std::vector<std::string>{"u1", "beta"}));
}

TEST_F(CommandTableTest, ShorterCommandTakesTheRestAsArguments) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({"flags", "beta", "gamma", "delta"});

  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command->name, "flags");
  EXPECT_EQ(parsed->args, (std::vector<std::string>{"beta", "gamma", "delta"}));
}

TEST_F(CommandTableTest, NoWordsIsUsageError) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({});

  EXPECT_TRUE(IsUsageError(parsed.status()));
  EXPECT_EQ(parsed.status().message(), "no command given");
}

TEST_F(CommandTableTest, UnknownCommandIsUsageError) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({"user", "delete", "me"});

  EXPECT_TRUE(IsUsageError(parsed.status()));
  EXPECT_EQ(parsed.status().message(), "unknown command \"user delete me\"");
}

TEST_F(CommandTableTest, ExtraArgumentIsUsageError) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({"user", "get", "me"});

  EXPECT_TRUE(IsUsageError(parsed.status()));
  EXPECT_EQ(parsed.status().message(), "\"user get\" takes no arguments, got 1 argument");
}

TEST_F(CommandTableTest, MissingArgumentIsUsageError) {
  const absl::StatusOr<ParsedCommand> parsed = Parse({"flags", "evaluate"});

  EXPECT_TRUE(IsUsageError(parsed.status()));
  EXPECT_EQ(parsed.status().message(),
            "\"flags evaluate\" takes DISTINCT_ID [FLAG], got 0 arguments");
}

TEST_F(CommandTableTest, GatewayInvalidArgumentIsNotUsageError) {
  EXPECT_FALSE(IsUsageError(absl::InvalidArgumentError("unknown project")));
  EXPECT_TRUE(IsUsageError(UsageError("bad flag")));
  EXPECT_EQ(UsageError("bad flag").code(), absl::StatusCode::kInvalidArgument);
}

class RunCommandTest : public testing::Test {
 protected:
  int Run(const std::vector<std::string>& positional) {
    absl::StatusOr<ParsedCommand> parsed = ParseCommand(TestCommands(), positional);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return RunCommand("posthog", *parsed, env_, out_, err_);
  }

  CommandEnv env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(RunCommandTest, SuccessExitsZeroWithOutputOnStdout) {
  EXPECT_EQ(Run({"flags", "a", "b"}), kExitOk);
  EXPECT_EQ(out_.str(), "ran with 2 arguments\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunCommandTest, HandlerUsageErrorExitsTwoWithHint) {
  EXPECT_EQ(Run({"capture", "event", "signup", "u1"}), kExitUsage);
  EXPECT_EQ(err_.str(),
            "error: --properties: not a JSON object\n"
            "Run 'posthog --help' for usage.\n");
}

TEST_F(RunCommandTest, RpcErrorExitsOneWithCodeAndMessage) {
  EXPECT_EQ(Run({"persons", "list"}), kExitRpcError);
  EXPECT_EQ(err_.str(), "error: UNAVAILABLE: PostHog answered 503\n");
}

TEST(ParseGeoipTest, OnOffOrTheProjectsDefault) {
  EXPECT_EQ(*ParseGeoip(""), posthog::v1::GEOIP_MODE_UNSPECIFIED);
  EXPECT_EQ(*ParseGeoip("on"), posthog::v1::GEOIP_MODE_ENABLED);
  EXPECT_EQ(*ParseGeoip("off"), posthog::v1::GEOIP_MODE_DISABLED);
  const absl::StatusOr<posthog::v1::GeoipMode> bad = ParseGeoip("yes");
  EXPECT_TRUE(IsUsageError(bad.status()));
  EXPECT_EQ(bad.status().message(),
            "--geoip must be on or off (or empty for the project's default), not yes");
}

TEST_F(RunCommandTest, ReportUsageErrorExitsTwo) {
  std::ostringstream err;

  EXPECT_EQ(ReportUsageError("posthog", UsageError("no command given"), err), kExitUsage);
  EXPECT_EQ(err.str(), "error: no command given\nRun 'posthog --help' for usage.\n");
}

}  // namespace
}  // namespace posthog_client
