#include "client/gateway_client.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"

namespace posthog_client {
namespace {

// gRPC's rule for metadata keys: `0-9 a-z - _ .`, and `grpc-` is reserved.
absl::Status ValidateMetadataKey(absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("metadata key: must not be empty");
  for (const char c : key) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key \"", key, "\": must be lower-case"));
    }
    const bool allowed = absl::ascii_islower(static_cast<unsigned char>(c)) ||
                         absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' ||
                         c == '_' || c == '.';
    if (!allowed) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key \"", key, "\": only 0-9 a-z - _ . are allowed"));
    }
  }
  if (absl::StartsWith(key, "grpc-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key \"", key, "\": the grpc- prefix is reserved"));
  }
  return absl::OkStatus();
}

// Text values travel as HTTP/2 header values: printable ASCII only.
absl::Status ValidateMetadataValue(absl::string_view key, absl::string_view value) {
  if (absl::EndsWith(key, "-bin")) return absl::OkStatus();
  for (const char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata value of \"", key,
                       "\": only printable ASCII is allowed (use a -bin key for bytes)"));
    }
  }
  return absl::OkStatus();
}

int ToMillis(absl::Duration duration) {
  return static_cast<int>(absl::ToInt64Milliseconds(duration));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat("cannot read ", path, ": ", std::strerror(error)));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

}  // namespace

absl::Status ValidateOptions(const GatewayClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("target: must not be empty");
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout: must be positive, got ", absl::FormatDuration(options.timeout)));
  }
  if (!options.ca_file.empty() && !options.use_tls) {
    return absl::InvalidArgumentError("ca_file: only meaningful with use_tls");
  }
  if ((!options.cert_file.empty() || !options.key_file.empty()) && !options.use_tls) {
    return absl::InvalidArgumentError("cert_file, key_file: only meaningful with use_tls");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("cert_file, key_file: give both or neither");
  }
  for (const auto& [key, value] : options.metadata) {
    if (absl::Status status = ValidateMetadataKey(key); !status.ok()) return status;
    if (absl::Status status = ValidateMetadataValue(key, value); !status.ok()) {
      return status;
    }
  }
  if (options.max_receive_message_bytes != -1 && options.max_receive_message_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_receive_message_bytes: must be positive or -1, got ",
                     options.max_receive_message_bytes));
  }
  if (options.keepalive_time != absl::ZeroDuration()) {
    if (options.keepalive_time < kMinKeepaliveTime ||
        options.keepalive_time == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("keepalive_time: must be zero (off) or a finite "
                       "duration of at least ",
                       absl::FormatDuration(kMinKeepaliveTime), ", got ",
                       absl::FormatDuration(options.keepalive_time)));
    }
    if (options.keepalive_timeout <= absl::ZeroDuration() ||
        options.keepalive_timeout == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("keepalive_timeout: must be a positive finite duration, got ",
                       absl::FormatDuration(options.keepalive_timeout)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<grpc::ChannelArguments> MakeChannelArguments(const GatewayClientOptions& options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (options.keepalive_time != absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, ToMillis(options.keepalive_time));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ToMillis(options.keepalive_timeout));
    // Pinging idle connections would count against the gateway's ping
    // policy with nothing to protect.
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  }
  if (!options.user_agent_prefix.empty()) {
    args.SetUserAgentPrefix(options.user_agent_prefix);
  }
  return args;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const GatewayClientOptions& options) {
  if (!options.use_tls) {
    if (!options.ca_file.empty()) {
      return absl::InvalidArgumentError("ca_file: only meaningful with use_tls");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadFile(options.ca_file);
    if (!roots.ok()) return roots.status();
    if (roots->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("ca_file ", options.ca_file, ": is empty"));
    }
    ssl.pem_root_certs = *std::move(roots);
  }
  if (!options.cert_file.empty()) {
    absl::StatusOr<std::string> chain = ReadFile(options.cert_file);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> key = ReadFile(options.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(chain);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateGatewayChannel(
    const GatewayClientOptions& options) {
  absl::StatusOr<grpc::ChannelArguments> args = MakeChannelArguments(options);
  if (!args.ok()) return args.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateCustomChannel(options.target, *credentials, *args);
}

std::unique_ptr<grpc::ClientContext> MakeClientContext(const GatewayClientOptions& options,
                                                       absl::Time now) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (options.timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(now + options.timeout));
  }
  for (const auto& [key, value] : options.metadata) {
    context->AddMetadata(key, value);
  }
  return context;
}

absl::StatusOr<std::unique_ptr<GatewayClient>> GatewayClient::Create(GatewayClientOptions options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = CreateGatewayChannel(options);
  if (!channel.ok()) return channel.status();
  return ForChannel(*std::move(channel), std::move(options));
}

absl::StatusOr<std::unique_ptr<GatewayClient>> GatewayClient::ForChannel(
    std::shared_ptr<grpc::ChannelInterface> channel, GatewayClientOptions options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  // The constructor is private, so std::make_unique cannot reach it.
  return std::unique_ptr<GatewayClient>(new GatewayClient(std::move(channel), std::move(options)));
}

GatewayClient::GatewayClient(std::shared_ptr<grpc::ChannelInterface> channel,
                             GatewayClientOptions options)
    : options_(std::move(options)),
      user_service_(posthog::v1::UserService::NewStub(channel)),
      capture_service_(posthog::v1::CaptureService::NewStub(channel)),
      person_service_(posthog::v1::PersonService::NewStub(channel)),
      flag_service_(posthog::v1::FlagService::NewStub(channel)),
      group_service_(posthog::v1::GroupService::NewStub(channel)) {}

}  // namespace posthog_client
