#include "server/fleet/fleet_coordinator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace posthog_gateway {
namespace {

// Every script reads Redis' clock (milliseconds), so that the replicas'
// clocks never matter.
constexpr char kNow[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) ";

// KEYS: log, pause. ARGV: margin_ms, member, then (limit, window_ms) pairs.
// Returns 0 when the turn is taken, else the milliseconds until it may be.
constexpr char kTakeTurn[] =
    "local margin = tonumber(ARGV[1]) "
    "local next = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "local longest = 0 "
    "for i = 3, #ARGV, 2 do "
    "  local limit = tonumber(ARGV[i]) "
    "  local window = tonumber(ARGV[i + 1]) + margin "
    "  if window > longest then longest = window end "
    "  if limit > 0 then "
    "    local entry = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES') "
    "    if entry[2] then "
    "      local free = tonumber(entry[2]) + window "
    "      if free > next then next = free end "
    "    end "
    "  end "
    "end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest) "
    "if next <= now then "
    "  redis.call('ZADD', KEYS[1], now, ARGV[2]) "
    "  redis.call('PEXPIRE', KEYS[1], longest) "
    "  return 0 "
    "end "
    "return next - now";

// KEYS: pause. ARGV: delay_ms.
constexpr char kHoldBack[] =
    "local delay = tonumber(ARGV[1]) "
    "local current = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if now + delay > current then "
    "  redis.call('SET', KEYS[1], now + delay, 'PX', delay + 1000) "
    "end "
    "return 0";

// KEYS: lease. ARGV: replica, ttl_ms. 1 when the replica holds it.
constexpr char kHoldLease[] =
    "local holder = redis.call('GET', KEYS[1]) "
    "if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
    "if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return 0";

// KEYS: lease. ARGV: replica.
constexpr char kReleaseLease[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end "
    "return 0";

// KEYS: defs. ARGV: etag, body, channel. Returns the new version.
constexpr char kStore[] =
    "local version = redis.call('HINCRBY', KEYS[1], 'version', 1) "
    "redis.call('HSET', KEYS[1], 'etag', ARGV[1], 'body', ARGV[2], 'fetched_at', now) "
    "redis.call('PUBLISH', ARGV[3], version) "
    "return version";

// KEYS: defs.
constexpr char kConfirm[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'fetched_at', now) "
    "end "
    "return 0";

// KEYS: replicas. ARGV: replica, expiry_ms. Returns the live replicas.
constexpr char kHeartbeat[] =
    "redis.call('ZADD', KEYS[1], now, ARGV[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2])) "
    "redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2])) "
    "return redis.call('ZCARD', KEYS[1])";

std::vector<std::string> Eval(const char* script, std::vector<std::string> keys,
                              std::vector<std::string> args) {
  std::vector<std::string> argv = {"EVAL", absl::StrCat(kNow, script), absl::StrCat(keys.size())};
  for (std::string& key : keys) argv.push_back(std::move(key));
  for (std::string& arg : args) argv.push_back(std::move(arg));
  return argv;
}

std::string Millis(absl::Duration duration) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(duration)));
}

// Reads an HMGET field: a string, or nil.
std::optional<std::string> Field(const RedisReply& reply, size_t i) {
  if (reply.type != RedisReply::Type::kArray || i >= reply.elements.size() ||
      reply.elements[i].type != RedisReply::Type::kString) {
    return std::nullopt;
  }
  return reply.elements[i].str;
}

flags::SharedState StateOf(const RedisReply& reply) {
  flags::SharedState state;
  int64_t value = 0;
  if (std::optional<std::string> version = Field(reply, 0);
      version.has_value() && absl::SimpleAtoi(*version, &value)) {
    state.version = value;
  }
  if (std::optional<std::string> fetched = Field(reply, 1);
      fetched.has_value() && absl::SimpleAtoi(*fetched, &value)) {
    state.fetch_time = absl::FromUnixMillis(value);
  }
  return state;
}

}  // namespace

FleetCoordinator::FleetCoordinator(FleetOptions options)
    : options_(std::move(options)), client_(options_.redis) {
  heartbeat_ = std::thread([this] {
    do {
      Heartbeat();
    } while (!stopping_.WaitForNotificationWithTimeout(options_.heartbeat));
  });
  RedisOptions subscriber = options_.redis;
  // The subscription's connection waits for messages; its reads are bounded
  // by a poll of its own, so only connecting uses the command deadline.
  subscriber_ = std::make_unique<RedisSubscriber>(
      subscriber, absl::StrCat(options_.key_prefix, ":*:defs"),
      [this](const std::string& channel, const std::string&) { Notify(channel); },
      [this] {
        // Reconnected: whatever was published meanwhile is looked at now.
        std::vector<std::function<void()>> all;
        {
          absl::MutexLock lock(&mu_);
          for (const auto& [project, changed] : on_change_) all.push_back(changed);
        }
        for (const auto& changed : all) changed();
      });
}

FleetCoordinator::~FleetCoordinator() {
  stopping_.Notify();
  if (heartbeat_.joinable()) heartbeat_.join();
  subscriber_.reset();
  // Leaving: another replica takes the leases over at its next round
  // instead of at their expiry, and the others' shares grow at once.
  std::set<std::string> leases;
  {
    absl::MutexLock lock(&mu_);
    leases.swap(leases_);
  }
  for (const std::string& project : leases) {
    (void)Run(
        Eval(kReleaseLease, {Key(absl::StrCat(project, ":defs:lease"))}, {options_.replica_id}));
  }
  (void)Run({"ZREM", Key("replicas"), options_.replica_id});
}

std::string FleetCoordinator::Key(const std::string& name) const {
  return absl::StrCat(options_.key_prefix, ":", name);
}

absl::StatusOr<RedisReply> FleetCoordinator::Run(const std::vector<std::string>& argv) {
  absl::StatusOr<RedisReply> reply = client_.Command(argv);
  const int now_shared = reply.ok() ? 1 : 0;
  if (!reply.ok()) errors_.fetch_add(1, std::memory_order_relaxed);
  const int before = shared_.exchange(now_shared, std::memory_order_relaxed);
  if (before != now_shared) {
    if (now_shared == 1) {
      LogInfo("fleet: Redis reachable; the rate budget and the flag poll are shared",
              {{"replicas", absl::StrCat(Replicas())}});
    } else {
      LogWarning(
          "fleet: Redis unreachable; pacing with this replica's share of the budget and "
          "polling flag definitions alone until it is back",
          {{"replicas", absl::StrCat(Replicas())},
           {"error", std::string(reply.status().message())}});
    }
  }
  return reply;
}

void FleetCoordinator::Heartbeat() {
  absl::StatusOr<RedisReply> count = Run(
      Eval(kHeartbeat, {Key("replicas")}, {options_.replica_id, Millis(3 * options_.heartbeat)}));
  if (count.ok() && count->type == RedisReply::Type::kInteger && count->integer > 0) {
    replicas_.store(static_cast<int>(std::min<int64_t>(count->integer, 1000)),
                    std::memory_order_relaxed);
  }
}

absl::StatusOr<absl::Duration> FleetCoordinator::TakeTurn(const std::string& budget,
                                                          const std::vector<RateWindow>& windows,
                                                          absl::Duration margin) {
  std::vector<std::string> args = {
      absl::StrCat(absl::ToInt64Milliseconds(margin)),
      absl::StrCat(options_.replica_id, ":", turns_.fetch_add(1, std::memory_order_relaxed))};
  for (const RateWindow& window : windows) {
    args.push_back(absl::StrCat(window.limit));
    args.push_back(Millis(window.window));
  }
  absl::StatusOr<RedisReply> reply =
      Run(Eval(kTakeTurn, {Key(absl::StrCat(budget, ":log")), Key(absl::StrCat(budget, ":pause"))},
               std::move(args)));
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kInteger) {
    return absl::InternalError("fleet: unexpected answer to the rate budget script");
  }
  return absl::Milliseconds(reply->integer);
}

void FleetCoordinator::HoldBack(const std::string& budget, absl::Duration delay) {
  (void)Run(Eval(kHoldBack, {Key(absl::StrCat(budget, ":pause"))}, {Millis(delay)}));
}

void FleetCoordinator::Seed(const std::string& budget, const std::vector<absl::Time>& times,
                            absl::Duration keep) {
  std::vector<std::string> argv = {"ZADD", Key(absl::StrCat(budget, ":log"))};
  for (const absl::Time time : times) {
    argv.push_back(absl::StrCat(absl::ToUnixMillis(time)));
    argv.push_back(absl::StrCat(options_.replica_id,
                                ":alone:", turns_.fetch_add(1, std::memory_order_relaxed)));
  }
  if (argv.size() > 2) (void)Run(argv);
  (void)Run({"PEXPIRE", Key(absl::StrCat(budget, ":log")), Millis(keep)});
}

absl::StatusOr<bool> FleetCoordinator::HoldLease(const std::string& project) {
  absl::StatusOr<RedisReply> reply =
      Run(Eval(kHoldLease, {Key(absl::StrCat(project, ":defs:lease"))},
               {options_.replica_id, Millis(options_.lease)}));
  if (!reply.ok()) return reply.status();
  const bool holder = reply->type == RedisReply::Type::kInteger && reply->integer == 1;
  absl::MutexLock lock(&mu_);
  if (holder) {
    leases_.insert(project);
  } else {
    leases_.erase(project);
  }
  return holder;
}

absl::Status FleetCoordinator::Store(const std::string& project, const std::string& etag,
                                     const std::string& body) {
  const std::string key = Key(absl::StrCat(project, ":defs"));
  return Run(Eval(kStore, {key}, {etag, body, key})).status();
}

absl::Status FleetCoordinator::Confirm(const std::string& project) {
  return Run(Eval(kConfirm, {Key(absl::StrCat(project, ":defs"))}, {})).status();
}

absl::StatusOr<flags::SharedState> FleetCoordinator::Peek(const std::string& project) {
  absl::StatusOr<RedisReply> reply =
      Run({"HMGET", Key(absl::StrCat(project, ":defs")), "version", "fetched_at"});
  if (!reply.ok()) return reply.status();
  return StateOf(*reply);
}

absl::StatusOr<std::optional<flags::SharedCopy>> FleetCoordinator::Load(
    const std::string& project) {
  absl::StatusOr<RedisReply> reply =
      Run({"HMGET", Key(absl::StrCat(project, ":defs")), "version", "fetched_at", "etag", "body"});
  if (!reply.ok()) return reply.status();
  flags::SharedCopy copy;
  copy.state = StateOf(*reply);
  std::optional<std::string> body = Field(*reply, 3);
  if (copy.state.version == 0 || !body.has_value()) return std::nullopt;
  copy.etag = Field(*reply, 2).value_or("");
  copy.body = *std::move(body);
  return copy;
}

void FleetCoordinator::OnChange(const std::string& project, std::function<void()> changed) {
  absl::MutexLock lock(&mu_);
  on_change_[project] = std::move(changed);
}

void FleetCoordinator::Notify(const std::string& channel) {
  // `<prefix>:<alias>:defs`.
  const std::string prefix = absl::StrCat(options_.key_prefix, ":");
  if (!absl::StartsWith(channel, prefix) || !absl::EndsWith(channel, ":defs")) return;
  const std::string project = channel.substr(prefix.size(), channel.size() - prefix.size() - 5);
  std::function<void()> changed;
  {
    absl::MutexLock lock(&mu_);
    auto it = on_change_.find(project);
    if (it == on_change_.end()) return;
    changed = it->second;
  }
  changed();
}

}  // namespace posthog_gateway
