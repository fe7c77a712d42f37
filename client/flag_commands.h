#ifndef CLIENT_FLAG_COMMANDS_H_
#define CLIENT_FLAG_COMMANDS_H_

// The `flags ...` commands of the `posthog` tool (FlagService). Same
// contract as client/commands.h: each prints the response as JSON.
//
//   flags evaluate CONTEXT [KEY...]   EvaluateFlags; CONTEXT is a distinct id
//                                     or an EvaluationContext as JSON
//   flags list [page_size=N] [limit=N] [resume=TOKEN]
//                                     ListFlags, one JSON object per line
//   flags list-local                  the gateway's current definitions
//   flags get ID | delete ID          GetFlag / DeleteFlag
//   flags create FLAG_JSON            CreateFlag (a posthog.v1.Flag as JSON)
//   flags update FLAG_JSON [FIELD...] UpdateFlag with an update mask

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli.h"

namespace posthog_client {

absl::Status EvaluateFlagsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                  std::ostream& out);
absl::Status ListFlagsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                              std::ostream& out);
absl::Status ListLocalFlagsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                   std::ostream& out);
absl::Status GetFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                            std::ostream& out);
absl::Status CreateFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out);
absl::Status UpdateFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out);
absl::Status DeleteFlagCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out);

}  // namespace posthog_client

#endif  // CLIENT_FLAG_COMMANDS_H_
