#include "server/flags/definitions_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway::flags {

DefinitionsStore::DefinitionsStore(const PostHogClient* client, FlagsConfig options, Clock* clock)
    : client_(client),
      options_(options),
      clock_(clock),
      current_(std::make_shared<const DefinitionsSnapshot>()) {}

DefinitionsStore::~DefinitionsStore() { Stop(); }

std::shared_ptr<const DefinitionsSnapshot> DefinitionsStore::Current() const {
  return std::atomic_load_explicit(&current_, std::memory_order_acquire);
}

std::shared_ptr<DefinitionsSnapshot> DefinitionsStore::Next() const {
  return std::make_shared<DefinitionsSnapshot>(*Current());
}

void DefinitionsStore::Publish(std::shared_ptr<DefinitionsSnapshot> next) {
  std::shared_ptr<const DefinitionsSnapshot> previous = Current();
  const bool changed = next->definitions != previous->definitions ||
                       next->stale != previous->stale ||
                       next->quota_limited != previous->quota_limited;
  if (changed) ++next->generation;
  const uint64_t generation = next->generation;
  std::atomic_store_explicit(&current_, std::shared_ptr<const DefinitionsSnapshot>(std::move(next)),
                             std::memory_order_release);
  if (changed) {
    absl::MutexLock lock(&mu_);
    published_generation_ = generation;
  }
}

void DefinitionsStore::UseFleet(SharedDefinitions* shared, absl::Duration lease) {
  shared_ = shared;
  lease_ = lease;
  shared_->OnChange(client_->project().alias, [this] { Wake(); });
}

void DefinitionsStore::Wake() {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

absl::Duration DefinitionsStore::PollOnce() {
  if (shared_ == nullptr) return PollPostHog(/*holder=*/false);
  const absl::Time now = clock_->Now();
  // Renewed (or looked at) three times per lease: a holder keeps it, and
  // the others notice within the lease's expiry that it lapsed.
  const absl::Duration round = std::max(lease_ / 3, absl::Milliseconds(100));
  absl::StatusOr<bool> holder = shared_->HoldLease(client_->project().alias);
  if (holder.ok() && !*holder) {
    polling_.store(false, std::memory_order_relaxed);
    // Polled by another replica: take over at once if the lease comes our way.
    next_posthog_poll_ = absl::InfinitePast();
    FollowFleet();
    return std::min(round, options_.poll_interval);
  }
  polling_.store(true, std::memory_order_relaxed);
  if (now >= next_posthog_poll_) {
    next_posthog_poll_ = now + PollPostHog(/*holder=*/holder.ok());
  }
  const absl::Duration until_poll = next_posthog_poll_ - now;
  return holder.ok() ? std::min(until_poll, round) : until_poll;
}

void DefinitionsStore::FollowFleet() {
  const std::string& alias = client_->project().alias;
  absl::StatusOr<SharedState> state = shared_->Peek(alias);
  if (!state.ok() || state->version == 0) return;  // Next round: alone, or later.
  std::shared_ptr<DefinitionsSnapshot> next = Next();
  // Stale when the poller has not had them confirmed for a while (it is
  // refused, PostHog is down, or no replica polls).
  next->stale = clock_->Now() - state->fetch_time > 3 * options_.poll_interval + lease_;
  next->fetch_time = state->fetch_time;
  if (state->version != followed_version_ || next->definitions == nullptr) {
    absl::StatusOr<std::optional<SharedCopy>> copy = shared_->Load(alias);
    if (!copy.ok() || !copy->has_value()) return;
    nlohmann::json body = nlohmann::json::parse((*copy)->body, nullptr, false);
    absl::StatusOr<std::shared_ptr<const CompiledDefinitions>> compiled =
        body.is_discarded() ? absl::InvalidArgumentError("flag definitions: body is not JSON")
                            : CompileDefinitions(std::move(body));
    if (!compiled.ok()) {
      LogWarning("flag definitions from the fleet: malformed, serving the last ones",
                 {{"project", alias}, {"error", std::string(compiled.status().message())}});
      return;
    }
    next->definitions = *std::move(compiled);
    next->etag = (*copy)->etag;
    next->fetch_time = (*copy)->state.fetch_time;
    next->quota_limited = false;
    followed_version_ = (*copy)->state.version;
    loaded_.store(true, std::memory_order_release);
  }
  Publish(std::move(next));
}

absl::Duration DefinitionsStore::PollPostHog(bool holder) {
  const ProjectConfig& project = client_->project();
  absl::StatusOr<Secret> token = client_->Key(KeyKind::kProjectApiKey);
  if (!token.ok()) {
    LogWarning("flag definitions: no project API key",
               {{"project", project.alias}, {"error", std::string(token.status().message())}});
    return options_.poll_interval;
  }
  PostHogRequest request;
  request.method = "GET";
  absl::StatusOr<std::string> path = UpstreamUrl()
                                         .Literal("flags")
                                         .Literal("definitions")
                                         .Query("token", token->value())
                                         .QueryFlag("send_cohorts")
                                         .Build();
  if (!path.ok()) {
    LogWarning("flag definitions: cannot build the request",
               {{"project", project.alias}, {"error", std::string(path.status().message())}});
    return options_.poll_interval;
  }
  request.path = *std::move(path);
  // The secure key is preferred; the personal key may only go to the app host.
  if (client_->Key(KeyKind::kFeatureFlagsSecureKey).ok()) {
    request.host = PostHogHost::kIngestion;
    request.bearer = KeyKind::kFeatureFlagsSecureKey;
  } else {
    request.host = PostHogHost::kApp;
    request.bearer = KeyKind::kPersonalApiKey;
  }
  request.headers = {{"Accept", "application/json"}};
  std::shared_ptr<const DefinitionsSnapshot> current = Current();
  if (!current->etag.empty() && current->definitions != nullptr) {
    request.headers.emplace_back("If-None-Match", current->etag);
  }
  CallContext context;
  context.deadline = clock_->Now() + options_.request_timeout;

  absl::StatusOr<HttpResponse> response = client_->Send(request, context);
  std::shared_ptr<DefinitionsSnapshot> next = Next();
  if (!response.ok() || response->status_code >= 500) {
    LogWarning("flag definitions: PostHog unreachable, serving the last ones",
               {{"project", project.alias},
                {"error", response.ok() ? absl::StrCat("HTTP ", response->status_code)
                                        : std::string(response.status().message())}});
    next->stale = true;
    Publish(std::move(next));
    return options_.poll_interval;
  }
  const int code = response->status_code;
  if (code == 401 || code == 403 || code == 429) {
    ++refusals_;
    next->stale = true;
    Publish(std::move(next));
    absl::Duration delay = options_.poll_interval;
    for (int i = 0; i < refusals_ && delay < options_.max_backoff; ++i) delay *= 2;
    delay = std::min(delay, std::max(options_.max_backoff, options_.poll_interval));
    LogWarning("flag definitions refused; backing off",
               {{"project", project.alias},
                {"http_status", absl::StrCat(code)},
                {"retry_in", absl::FormatDuration(delay)}});
    return delay;
  }
  refusals_ = 0;
  if (code == 402) {
    LogWarning("flag definitions: quota exceeded (402); flags cleared",
               {{"project", project.alias}});
    next->definitions = nullptr;
    next->etag.clear();
    next->quota_limited = true;
    next->stale = false;
    Publish(std::move(next));
    return options_.poll_interval;
  }
  if (code == 304) {
    next->stale = false;
    next->fetch_time = clock_->Now();
    Publish(std::move(next));
    if (holder) (void)shared_->Confirm(project.alias);
    return options_.poll_interval;
  }
  if (code != 200) {
    LogWarning("flag definitions: unexpected answer",
               {{"project", project.alias}, {"http_status", absl::StrCat(code)}});
    next->stale = true;
    Publish(std::move(next));
    return options_.poll_interval;
  }
  nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
  absl::StatusOr<std::shared_ptr<const CompiledDefinitions>> compiled =
      body.is_discarded() ? absl::InvalidArgumentError("flag definitions: body is not JSON")
                          : CompileDefinitions(std::move(body));
  if (!compiled.ok()) {
    LogWarning("flag definitions: malformed body, serving the last ones",
               {{"project", project.alias}, {"error", std::string(compiled.status().message())}});
    next->stale = true;
    Publish(std::move(next));
    return options_.poll_interval;
  }
  next->definitions = *std::move(compiled);
  // SDKs forget the ETag when the server stops sending one.
  next->etag = response->Header("etag").value_or("");
  if (holder) {
    // The others load them from the fleet; a failure is logged once until
    // storing works again (they poll on their own meanwhile).
    const absl::Status stored = shared_->Store(project.alias, next->etag, response->body);
    if (!stored.ok() && !fleet_store_failed_) {
      LogWarning("flag definitions: cannot share them with the fleet",
                 {{"project", project.alias}, {"error", std::string(stored.message())}});
    }
    fleet_store_failed_ = !stored.ok();
  }
  next->fetch_time = clock_->Now();
  next->stale = false;
  next->quota_limited = false;
  // Loaded before published: whoever Publish wakes must see it.
  loaded_.store(true, std::memory_order_release);
  Publish(std::move(next));
  return options_.poll_interval;
}

std::shared_ptr<const DefinitionsSnapshot> DefinitionsStore::WaitForChange(
    uint64_t generation, absl::Duration timeout) const {
  struct Changed {
    const DefinitionsStore* store;
    uint64_t generation;
    bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return store->published_generation_ != generation || store->stopping_.HasBeenNotified();
    }
  };
  const Changed changed{this, generation};
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return Current();
}

void DefinitionsStore::Start() {
  poller_ = std::thread([this] {
    while (!stopping_.HasBeenNotified()) {
      const absl::Duration delay = PollOnce();
      // Until the delay passes, Stop, or a change in the fleet (Wake).
      absl::MutexLock lock(&wake_mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) {
        return wake_ || stopping_.HasBeenNotified();
      };
      wake_mu_.AwaitWithTimeout(absl::Condition(&woken), delay);
      wake_ = false;
    }
  });
}

void DefinitionsStore::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_.HasBeenNotified()) stopping_.Notify();
  }
  Wake();  // The poller waits on wake_mu_'s condition.
  if (poller_.joinable()) poller_.join();
}

}  // namespace posthog_gateway::flags
