#include "client/gateway_client.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/client/fake_user_service.h"

namespace posthog_client {
namespace {

// ArgsAsStrings flattens channel arguments to key → value, integers in
// decimal, so a test can compare the whole set at once.
std::map<std::string, std::string> ArgsAsStrings(const grpc::ChannelArguments& args) {
  grpc_channel_args c_args;
  args.SetChannelArgs(&c_args);
  std::map<std::string, std::string> flat;
  for (size_t i = 0; i < c_args.num_args; ++i) {
    const grpc_arg& arg = c_args.args[i];
    switch (arg.type) {
      case GRPC_ARG_INTEGER:
        flat[arg.key] = absl::StrCat(arg.value.integer);
        break;
      case GRPC_ARG_STRING:
        flat[arg.key] = arg.value.string;
        break;
      case GRPC_ARG_POINTER:
        flat[arg.key] = "<pointer>";
        break;
    }
  }
  return flat;
}

std::string GrpcUserAgent() { return absl::StrCat("grpc-c++/", grpc::Version()); }

class ChannelArgumentsTest : public testing::Test {
 protected:
  GatewayClientOptions options_;
};

TEST_F(ChannelArgumentsTest, DefaultsSetOnlyTheReceiveLimit) {
  const absl::StatusOr<grpc::ChannelArguments> args = MakeChannelArguments(options_);

  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(ArgsAsStrings(*args), (std::map<std::string, std::string>{
                                      {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, "16777216"},
                                      {GRPC_ARG_PRIMARY_USER_AGENT_STRING, GrpcUserAgent()},
                                  }));
}

TEST_F(ChannelArgumentsTest, KeepaliveAddsPingSettingsWithoutIdlePings) {
  options_.keepalive_time = absl::Seconds(30);
  options_.keepalive_timeout = absl::Milliseconds(2500);
  options_.max_receive_message_bytes = -1;
  options_.user_agent_prefix = "posthog-cli/0.1.0";

  const absl::StatusOr<grpc::ChannelArguments> args = MakeChannelArguments(options_);

  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(
      ArgsAsStrings(*args),
      (std::map<std::string, std::string>{
          {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, "-1"},
          {GRPC_ARG_KEEPALIVE_TIME_MS, "30000"},
          {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, "2500"},
          {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, "0"},
          {GRPC_ARG_PRIMARY_USER_AGENT_STRING, absl::StrCat("posthog-cli/0.1.0 ", GrpcUserAgent())},
      }));
}

TEST_F(ChannelArgumentsTest, InvalidOptionsGiveNoArguments) {
  options_.max_receive_message_bytes = 0;

  const absl::StatusOr<grpc::ChannelArguments> args = MakeChannelArguments(options_);

  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
}

// One invalid option and the exact complaint it draws.
struct InvalidOptionsCase {
  std::string name;
  std::function<void(GatewayClientOptions&)> mutate;
  std::string message;
};

class ValidateOptionsTest : public testing::TestWithParam<InvalidOptionsCase> {};

TEST_P(ValidateOptionsTest, RejectsWithMessageNamingTheField) {
  GatewayClientOptions options;
  GetParam().mutate(options);

  const absl::Status status = ValidateOptions(options);

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidateOptionsTest,
    testing::Values(
        InvalidOptionsCase{"EmptyTarget", [](GatewayClientOptions& o) { o.target = ""; },
                           "target: must not be empty"},
        InvalidOptionsCase{"ZeroTimeout",
                           [](GatewayClientOptions& o) { o.timeout = absl::ZeroDuration(); },
                           "timeout: must be positive, got 0"},
        InvalidOptionsCase{"CaFileWithoutTls",
                           [](GatewayClientOptions& o) { o.ca_file = "/ca.pem"; },
                           "ca_file: only meaningful with use_tls"},
        InvalidOptionsCase{"ClientCertificateWithoutTls",
                           [](GatewayClientOptions& o) {
                             o.cert_file = "/client.pem";
                             o.key_file = "/client.key";
                           },
                           "cert_file, key_file: only meaningful with use_tls"},
        InvalidOptionsCase{"ClientCertificateWithoutKey",
                           [](GatewayClientOptions& o) {
                             o.use_tls = true;
                             o.cert_file = "/client.pem";
                           },
                           "cert_file, key_file: give both or neither"},
        InvalidOptionsCase{"UpperCaseMetadataKey",
                           [](GatewayClientOptions& o) {
                             o.metadata = {{"X-Request-Id", "1"}};
                           },
                           "metadata key \"X-Request-Id\": must be lower-case"},
        InvalidOptionsCase{"MetadataKeyWithSpace",
                           [](GatewayClientOptions& o) {
                             o.metadata = {{"request id", "1"}};
                           },
                           "metadata key \"request id\": only 0-9 a-z - _ . are "
                           "allowed"},
        InvalidOptionsCase{"ReservedMetadataKey",
                           [](GatewayClientOptions& o) {
                             o.metadata = {{"grpc-timeout", "1S"}};
                           },
                           "metadata key \"grpc-timeout\": the grpc- prefix is "
                           "reserved"},
        InvalidOptionsCase{"EmptyMetadataKey",
                           [](GatewayClientOptions& o) {
                             o.metadata = {{"", "1"}};
                           },
                           "metadata key: must not be empty"},
        InvalidOptionsCase{"NewlineInMetadataValue",
                           [](GatewayClientOptions& o) {
                             o.metadata = {{"x-request-id", "a\nb"}};
                           },
                           "metadata value of \"x-request-id\": only printable "
                           "ASCII is allowed (use a -bin key for bytes)"},
        InvalidOptionsCase{"NegativeReceiveLimit",
                           [](GatewayClientOptions& o) { o.max_receive_message_bytes = -2; },
                           "max_receive_message_bytes: must be positive or -1, "
                           "got -2"},
        InvalidOptionsCase{"KeepaliveBelowGatewayMinimum",
                           [](GatewayClientOptions& o) { o.keepalive_time = absl::Seconds(5); },
                           "keepalive_time: must be zero (off) or a finite "
                           "duration of at least 10s, got 5s"},
        InvalidOptionsCase{"KeepaliveWithoutTimeout",
                           [](GatewayClientOptions& o) {
                             o.keepalive_time = absl::Minutes(1);
                             o.keepalive_timeout = absl::ZeroDuration();
                           },
                           "keepalive_timeout: must be a positive finite "
                           "duration, got 0"}),
    [](const testing::TestParamInfo<InvalidOptionsCase>& info) { return info.param.name; });

class ValidOptionsTest : public testing::Test {};

TEST_F(ValidOptionsTest, AcceptsBinaryMetadataAndInfiniteTimeout) {
  GatewayClientOptions options;
  options.timeout = absl::InfiniteDuration();
  options.metadata = {{"x-request-id", "req-1"}, {"trace-bin", std::string("\0\1", 2)}};
  options.keepalive_time = absl::Seconds(10);

  EXPECT_TRUE(ValidateOptions(options).ok()) << ValidateOptions(options);
}

class ClientContextTest : public testing::Test {
 protected:
  const absl::Time now_ = absl::FromUnixSeconds(1700000000);
  GatewayClientOptions options_;
};

TEST_F(ClientContextTest, DeadlineIsNowPlusTimeout) {
  options_.timeout = absl::Milliseconds(2500);

  const std::unique_ptr<grpc::ClientContext> context = MakeClientContext(options_, now_);

  EXPECT_EQ(context->deadline(), absl::ToChronoTime(absl::FromUnixMillis(1700000002500)));
}

TEST_F(ClientContextTest, NoDeadlineWhenTimeoutIsInfinite) {
  options_.timeout = absl::InfiniteDuration();

  const std::unique_ptr<grpc::ClientContext> context = MakeClientContext(options_, now_);

  EXPECT_EQ(context->deadline(), std::chrono::system_clock::time_point::max());
}

class ChannelCredentialsTest : public testing::Test {
 protected:
  GatewayClientOptions options_;
};

TEST_F(ChannelCredentialsTest, PlaintextByDefault) {
  const auto credentials = MakeChannelCredentials(options_);

  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST_F(ChannelCredentialsTest, MissingCaFileIsNotFound) {
  options_.use_tls = true;
  options_.ca_file = absl::StrCat(testing::TempDir(), "/no-such-ca.pem");

  const auto credentials = MakeChannelCredentials(options_);

  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(credentials.status().message(),
            absl::StrCat("cannot read ", options_.ca_file, ": No such file or directory"));
}

TEST_F(ChannelCredentialsTest, EmptyCaFileIsInvalid) {
  options_.use_tls = true;
  options_.ca_file = absl::StrCat(testing::TempDir(), "/empty-ca.pem");
  std::FILE* file = std::fopen(options_.ca_file.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fclose(file);

  const auto credentials = MakeChannelCredentials(options_);

  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(credentials.status().message(),
            absl::StrCat("ca_file ", options_.ca_file, ": is empty"));
}

TEST_F(ChannelCredentialsTest, CreateRejectsInvalidOptionsBeforeConnecting) {
  options_.target = "";

  const auto client = GatewayClient::Create(options_);

  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
}

// GatewayClient against a fake UserService served in process.
class GatewayClientTest : public testing::Test {
 protected:
  void SetUp() override {
    options_.metadata = {{"x-request-id", "req-42"}, {"x-caller", "unit-test"}};
    absl::StatusOr<std::unique_ptr<GatewayClient>> client =
        GatewayClient::ForChannel(server_.NewChannel(), options_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  absl::StatusOr<posthog::v1::GetCurrentUserResponse> GetUser(const std::string& project) {
    posthog::v1::GetCurrentUserRequest request;
    request.set_project(project);
    return client_->Call(client_->user_service(),
                         &posthog::v1::UserService::StubInterface::GetCurrentUser, request);
  }

  FakeUserService users_;
  InProcessServer server_{{&users_}};
  GatewayClientOptions options_;
  std::unique_ptr<GatewayClient> client_;
};

TEST_F(GatewayClientTest, CallSendsRequestMetadataAndDeadline) {
  posthog::v1::GetCurrentUserResponse scripted;
  scripted.mutable_user()->set_email("ada@example.com");
  users_.SetResponse(scripted);

  const absl::StatusOr<posthog::v1::GetCurrentUserResponse> response = GetUser("demo");

  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->user().email(), "ada@example.com");
  const std::vector<FakeUserService::Call> calls = users_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].project, "demo");
  EXPECT_TRUE(calls[0].has_deadline);
  EXPECT_EQ(calls[0].metadata.count("x-request-id"), 1u);
  EXPECT_EQ(calls[0].metadata.find("x-request-id")->second, "req-42");
  EXPECT_EQ(calls[0].metadata.find("x-caller")->second, "unit-test");
}

TEST_F(GatewayClientTest, CallReturnsStatusWithRichDetailsOnError) {
  google::rpc::ErrorInfo info;
  info.set_reason("UNKNOWN_PROJECT");
  info.set_domain("posthog-gateway");
  google::rpc::Status details;
  details.set_code(grpc::StatusCode::INVALID_ARGUMENT);
  details.set_message("unknown project \"nope\"");
  details.add_details()->PackFrom(info);
  users_.SetStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown project \"nope\"",
                                details.SerializeAsString()));

  const absl::StatusOr<posthog::v1::GetCurrentUserResponse> response = GetUser("nope");

  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FormatRpcError(response.status()),
            "error: INVALID_ARGUMENT: unknown project \"nope\"\n"
            "  ErrorInfo: reason=UNKNOWN_PROJECT domain=posthog-gateway");
}

TEST_F(GatewayClientTest, EveryCallGetsItsOwnContext) {
  ASSERT_TRUE(GetUser("a").ok());
  ASSERT_TRUE(GetUser("b").ok());

  const std::vector<FakeUserService::Call> calls = users_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].project, "a");
  EXPECT_EQ(calls[1].project, "b");
  // Metadata is added per context, so it is not repeated on the second call.
  EXPECT_EQ(calls[1].metadata.count("x-request-id"), 1u);
}

TEST_F(GatewayClientTest, UnimplementedServiceAnswersUnimplemented) {
  posthog::v1::CaptureEventRequest request;

  const auto response =
      client_->Call(client_->capture_service(),
                    &posthog::v1::CaptureService::StubInterface::CaptureEvent, request);

  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace posthog_client
