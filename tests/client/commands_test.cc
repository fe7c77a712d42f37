#include "client/commands.h"

#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/client/fake_user_service.h"

namespace posthog_client {
namespace {

class CommandsTest : public testing::Test {};

TEST_F(CommandsTest, TableListsUserGetWithoutArguments) {
  const absl::StatusOr<ParsedCommand> parsed = ParseCommand(Commands(), {"user", "get"});

  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command->name, "user get");
  EXPECT_EQ(parsed->command->handler, &GetUserCommand);
  EXPECT_TRUE(IsUsageError(ParseCommand(Commands(), {"user", "get", "x"}).status()));
}

// `user get` against a fake UserService served in process.
class UserGetCommandTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<GatewayClient>> client =
        GatewayClient::ForChannel(server_.NewChannel(), GatewayClientOptions());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    env_.client = client_.get();
  }

  absl::Status Run() { return GetUserCommand(env_, {}, out_); }

  FakeUserService users_;
  InProcessServer server_{{&users_}};
  std::unique_ptr<GatewayClient> client_;
  CommandEnv env_;
  std::ostringstream out_;
};

TEST_F(UserGetCommandTest, PrintsResponseAsJsonWithProtoFieldNames) {
  posthog::v1::GetCurrentUserResponse response;
  posthog::v1::User* user = response.mutable_user();
  user->set_uuid("0188-user");
  user->set_first_name("Ada");
  user->set_email("ada@example.com");
  user->mutable_team()->set_id(7);
  user->mutable_team()->set_name("Demo");
  user->mutable_organization()->set_name("Acme");
  users_.SetResponse(response);
  env_.project = "demo";

  ASSERT_TRUE(Run().ok());

  // Protobuf's JSON mapping prints int64 as a string.
  EXPECT_EQ(out_.str(),
            "{\n"
            " \"user\": {\n"
            "  \"uuid\": \"0188-user\",\n"
            "  \"first_name\": \"Ada\",\n"
            "  \"email\": \"ada@example.com\",\n"
            "  \"team\": {\n"
            "   \"id\": \"7\",\n"
            "   \"name\": \"Demo\"\n"
            "  },\n"
            "  \"organization\": {\n"
            "   \"name\": \"Acme\"\n"
            "  }\n"
            " }\n"
            "}\n");
  ASSERT_EQ(users_.calls().size(), 1u);
  EXPECT_EQ(users_.calls()[0].project, "demo");
}

TEST_F(UserGetCommandTest, ReturnsRpcErrorAndPrintsNothing) {
  users_.SetStatus(
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "project demo has no personal API key"));

  const absl::Status status = Run();

  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "project demo has no personal API key");
  EXPECT_FALSE(IsUsageError(status));
  EXPECT_EQ(out_.str(), "");
}

}  // namespace
}  // namespace posthog_client
