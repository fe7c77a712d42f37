#ifndef CLIENT_GROUP_COMMANDS_H_
#define CLIENT_GROUP_COMMANDS_H_

// The `groups ...` commands of the `posthog` tool (GroupService). Same
// contract as client/commands.h: each prints the response as JSON. TYPE is
// a group type index (0 to 4; `groups types` lists them), KEY a group key.
//
//   groups types                          ListGroupTypes
//   groups list TYPE [group_key=K] [search=S] [limit=N] [resume=TOKEN]
//                                         ListGroups, one JSON object per line
//   groups get TYPE KEY                   GetGroup
//   groups create TYPE KEY [PROPERTIES_JSON]
//                                         CreateGroup
//   groups set TYPE KEY PROP=VALUE...     UpdateGroupProperties with `set`
//                                         (VALUE is JSON when it parses,
//                                         else a string)
//   groups unset TYPE KEY PROP...         UpdateGroupProperties with `unset`

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli.h"

namespace posthog_client {

absl::Status ListGroupTypesCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                   std::ostream& out);
absl::Status ListGroupsCommand(const CommandEnv& env, const std::vector<std::string>& args,
                               std::ostream& out);
absl::Status GetGroupCommand(const CommandEnv& env, const std::vector<std::string>& args,
                             std::ostream& out);
absl::Status CreateGroupCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                std::ostream& out);
absl::Status SetGroupPropertiesCommand(const CommandEnv& env, const std::vector<std::string>& args,
                                       std::ostream& out);
absl::Status UnsetGroupPropertiesCommand(const CommandEnv& env,
                                         const std::vector<std::string>& args, std::ostream& out);

}  // namespace posthog_client

#endif  // CLIENT_GROUP_COMMANDS_H_
