#include "server/fleet/redis_client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

timeval Timeval(absl::Duration duration) {
  return absl::ToTimeval(std::max(duration, absl::Milliseconds(1)));
}

RedisReply Copy(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) out.elements.push_back(Copy(*reply.element[i]));
      break;
    default:
      break;
  }
  return out;
}

absl::StatusOr<RedisReply> Send(redisContext* context, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), args.data(), lengths.data()));
  if (reply == nullptr) {
    return absl::UnavailableError(absl::StrCat("redis: ", context->errstr));
  }
  std::unique_ptr<redisReply, void (*)(void*)> owned(reply, freeReplyObject);
  if (reply->type == REDIS_REPLY_ERROR) {
    return absl::FailedPreconditionError(
        absl::StrCat("redis: ", std::string(reply->str, reply->len)));
  }
  return Copy(*reply);
}

// Connects and authenticates within the command timeout; null on failure,
// with `error` saying why (never the password).
redisContext* Connect(const RedisOptions& options, std::string& error) {
  redisContext* context =
      redisConnectWithTimeout(options.host.c_str(), options.port, Timeval(options.command_timeout));
  if (context == nullptr) {
    error = "cannot allocate a connection";
    return nullptr;
  }
  if (context->err != 0 || redisSetTimeout(context, Timeval(options.command_timeout)) != REDIS_OK) {
    error = context->errstr;
    redisFree(context);
    return nullptr;
  }
  if (!options.password.empty()) {
    absl::StatusOr<RedisReply> auth = Send(context, {"AUTH", options.password});
    if (!auth.ok()) {
      // Redis' message ("WRONGPASS ...") never repeats the password.
      error = std::string(auth.status().message());
      redisFree(context);
      return nullptr;
    }
  }
  return context;
}

}  // namespace

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {}

RedisClient::~RedisClient() {
  absl::MutexLock lock(&mu_);
  CloseLocked();
}

void RedisClient::CloseLocked() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

absl::Status RedisClient::ConnectLocked() {
  std::string error;
  context_ = Connect(options_, error);
  if (context_ == nullptr) return absl::UnavailableError(absl::StrCat("redis: ", error));
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& argv) {
  absl::MutexLock lock(&mu_);
  if (context_ == nullptr) {
    if (absl::Now() < next_attempt_) {
      return absl::UnavailableError("redis: unreachable (retrying soon)");
    }
    if (absl::Status connected = ConnectLocked(); !connected.ok()) {
      next_attempt_ = absl::Now() + options_.retry_every;
      return connected;
    }
  }
  absl::StatusOr<RedisReply> reply = Send(context_, argv);
  if (!reply.ok() && absl::IsUnavailable(reply.status())) {
    CloseLocked();
    next_attempt_ = absl::Now() + options_.retry_every;
  }
  return reply;
}

RedisSubscriber::RedisSubscriber(RedisOptions options, std::string pattern, OnMessage on_message,
                                 std::function<void()> on_connected)
    : options_(std::move(options)),
      pattern_(std::move(pattern)),
      on_message_(std::move(on_message)),
      on_connected_(std::move(on_connected)) {
  thread_ = std::thread([this] { Loop(); });
}

RedisSubscriber::~RedisSubscriber() {
  stopping_.Notify();
  if (thread_.joinable()) thread_.join();
}

void RedisSubscriber::Loop() {
  while (!stopping_.HasBeenNotified()) {
    std::string error;
    redisContext* context = Connect(options_, error);
    if (context != nullptr) {
      absl::StatusOr<RedisReply> subscribed = Send(context, {"PSUBSCRIBE", pattern_});
      if (subscribed.ok()) {
        if (on_connected_) on_connected_();
        Listen(context);  // Until the connection fails or Stop.
      }
      redisFree(context);
    }
    stopping_.WaitForNotificationWithTimeout(options_.retry_every);
  }
}

void RedisSubscriber::Listen(redisContext* context) {
  while (!stopping_.HasBeenNotified()) {
    // Replies already read come first; then wait (bounded, to notice Stop)
    // for the socket to have more.
    void* raw = nullptr;
    if (redisGetReplyFromReader(context, &raw) != REDIS_OK) return;
    if (raw == nullptr) {
      pollfd fd{context->fd, POLLIN, 0};
      const int ready = ::poll(&fd, 1, 200);
      if (ready < 0) return;
      if (ready == 0) continue;
      if (redisBufferRead(context) != REDIS_OK) return;
      continue;
    }
    std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw),
                                                       freeReplyObject);
    // A pattern message: ["pmessage", pattern, channel, message].
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
        reply->element[2]->type == REDIS_REPLY_STRING &&
        reply->element[3]->type == REDIS_REPLY_STRING) {
      on_message_(std::string(reply->element[2]->str, reply->element[2]->len),
                  std::string(reply->element[3]->str, reply->element[3]->len));
    }
  }
}

}  // namespace posthog_gateway
