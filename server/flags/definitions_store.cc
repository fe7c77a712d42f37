#include "server/flags/definitions_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/log.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway::flags {

DefinitionsStore::DefinitionsStore(const PostHogClient* client, FlagsConfig options,
                                   Clock clock)
    : client_(client),
      options_(options),
      clock_(clock ? std::move(clock) : Clock([] { return absl::Now(); })),
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

absl::Duration DefinitionsStore::PollOnce() {
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
  context.deadline = clock_() + options_.request_timeout;

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
    next->fetch_time = clock_();
    Publish(std::move(next));
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
  next->fetch_time = clock_();
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
      if (stopping_.WaitForNotificationWithTimeout(delay)) break;
    }
  });
}

void DefinitionsStore::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_.HasBeenNotified()) stopping_.Notify();
  }
  if (poller_.joinable()) poller_.join();
}

}  // namespace posthog_gateway::flags
