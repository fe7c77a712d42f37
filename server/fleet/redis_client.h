#ifndef SERVER_FLEET_REDIS_CLIENT_H_
#define SERVER_FLEET_REDIS_CLIENT_H_

// RedisClient sends commands to one Redis server over one connection
// (hiredis, synchronous), each within a short deadline, so that Redis
// trouble never holds a caller long:
// - connecting, each command's write and its reply share `command_timeout`;
// - a failure (refused, timed out, closed) closes the connection and answers
//   UNAVAILABLE; for `retry_every` after it every command answers UNAVAILABLE
//   at once, without touching the network, then one caller tries again;
// - an error reply from Redis (a script error, WRONGTYPE) is
//   FAILED_PRECONDITION with Redis' message.
//
// RedisSubscriber keeps its own connection subscribed to a channel pattern
// and calls a callback on its thread for each message, reconnecting by itself.
//
// Both are thread-safe. Commands are serialized on the one connection: each
// takes tens of microseconds on a healthy Redis.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

struct redisContext;

namespace posthog_gateway {

// One Redis reply, copied out of hiredis.
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // kString and kStatus.
  std::vector<RedisReply> elements;
};

struct RedisOptions {
  std::string host;
  int port = 6379;
  // Empty: no AUTH.
  std::string password;
  absl::Duration command_timeout = absl::Milliseconds(50);
  // After a failure, how long commands fail at once before one tries again.
  absl::Duration retry_every = absl::Seconds(1);
};

class RedisClient final {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();

  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Command sends `argv` (binary-safe) and returns the reply; see the file
  // comment for errors.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& argv) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status ConnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RedisOptions options_;
  absl::Mutex mu_;
  redisContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time next_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

class RedisSubscriber final {
 public:
  using OnMessage = std::function<void(const std::string& channel, const std::string& message)>;

  // Starts a thread subscribed to channels matching `pattern` (PSUBSCRIBE).
  // `on_connected` runs each time the subscription is (re)established, so a
  // caller can catch up on what it may have missed.
  RedisSubscriber(RedisOptions options, std::string pattern, OnMessage on_message,
                  std::function<void()> on_connected);
  // Stops the thread (within about 200 ms).
  ~RedisSubscriber();

  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

 private:
  void Loop();
  // Reads messages until the connection fails or Stop; closes it.
  void Listen(redisContext* context);

  const RedisOptions options_;
  const std::string pattern_;
  const OnMessage on_message_;
  const std::function<void()> on_connected_;
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace posthog_gateway

#endif  // SERVER_FLEET_REDIS_CLIENT_H_
