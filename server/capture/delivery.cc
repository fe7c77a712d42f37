#include "server/capture/delivery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "libdeflate.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/capture/event_builder.h"
#include "server/common/log.h"
#include "server/common/redact.h"
#include "server/posthog/error_mapping.h"
#include "server/posthog/upstream_url.h"

namespace posthog_gateway {
namespace {

// PostHog's batch capture endpoint (built once; it holds no caller value).
const std::string& BatchPath() {
  static const std::string* path =
      new std::string(UpstreamUrl().Literal("batch").TrailingSlash().Build().value());
  return *path;
}

double DefaultRandom() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

// PostHog's Retry-After (seconds or a date), at most kMaxRetryAfter like
// every wait PostHog names.
absl::Duration RetryAfter(const HttpResponse& response, absl::Time now) {
  std::optional<std::string> header = response.Header("retry-after");
  if (!header.has_value()) return absl::ZeroDuration();
  return ParseRetryAfter(*header, now).value_or(absl::ZeroDuration());
}

absl::Status kStoppingStatus() {
  return absl::UnavailableError(
      "the gateway is stopping; the event stays spooled and is delivered after a restart");
}

// 404 and 405 are retried too: capture accepts every well-formed batch at
// /batch/, so they come from a misrouted host or a proxy in between (an
// outage), never from the events themselves.
bool Retryable(int status) {
  return status == 404 || status == 405 || status == 408 || status == 429 || status >= 500;
}

// CountLines is the number of records (lines) in the file at `path`; 0 when
// it cannot be read.
int64_t CountLines(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return 0;
  int64_t lines = 0;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), file)) > 0;) {
    lines += std::count(buffer, buffer + n, '\n');
  }
  std::fclose(file);
  return lines;
}

std::string Reason(const HttpResponse& response) {
  std::string body = response.body.substr(0, 500);
  return RedactKeys(body);
}

}  // namespace

absl::Duration BackoffDelay(int attempt, absl::Duration initial, absl::Duration max, double random,
                            absl::Duration retry_after) {
  absl::Duration ceiling = initial;
  for (int i = 0; i < attempt && ceiling < max; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max);
  const absl::Duration delay = ceiling / 2 + (ceiling / 2) * random;
  return std::max(delay, retry_after);
}

std::string Gzip(const std::string& data) {
  // Level 1: the CPU is the budget (the gateway shares it with the load).
  // libdeflate compresses a whole buffer about three times faster than
  // zlib's deflate at level 1, in the same format. A compressor per thread:
  // allocating one costs more than compressing a small batch.
  struct FreeCompressor {
    void operator()(libdeflate_compressor* compressor) const {
      libdeflate_free_compressor(compressor);
    }
  };
  thread_local std::unique_ptr<libdeflate_compressor, FreeCompressor> compressor(
      libdeflate_alloc_compressor(1));
  // Compressed into a per-thread buffer, then copied out at its (much
  // smaller) size: a string of the bound's size would be zero-filled first.
  thread_local std::vector<char> buffer;
  buffer.resize(
      std::max(buffer.size(), libdeflate_gzip_compress_bound(compressor.get(), data.size())));
  const size_t size = libdeflate_gzip_compress(compressor.get(), data.data(), data.size(),
                                               buffer.data(), buffer.size());
  return std::string(buffer.data(), size);  // Never 0: the bound fits any input.
}

DeadLetterFile::DeadLetterFile(std::string path, int64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {}

void DeadLetterFile::Write(absl::string_view project, int http_status, absl::string_view reason,
                           absl::string_view event_json) {
  nlohmann::json head = {{"time", FormatEventTime(absl::Now())},
                         {"project", std::string(project)},
                         {"http_status", http_status},
                         {"reason", std::string(reason)}};
  std::string line = head.dump();
  line.pop_back();  // The closing brace: the event follows as it was sent.
  absl::StrAppend(&line, ",\"event\":", event_json, "}\n");
  absl::MutexLock lock(&mu_);
  ++count_;
  struct stat info;
  if (::stat(path_.c_str(), &info) == 0 && info.st_size > 0 &&
      info.st_size + static_cast<int64_t>(line.size()) > max_bytes_) {
    const std::string previous = path_ + ".1";
    // The rename replaces the older file: its records are lost.
    const int64_t dropped = CountLines(previous);
    if (std::rename(path_.c_str(), previous.c_str()) == 0) {
      if (dropped > 0) {
        lost_ += dropped;
        LogWarning("capture: rotating the dead-letter file dropped older dead letters",
                   {{"path", previous},
                    {"dropped_records", absl::StrCat(dropped)},
                    {"dropped_records_total", absl::StrCat(lost_)}});
      } else {
        LogInfo("capture: rotated the dead-letter file", {{"path", previous}});
      }
    }
  }
  // Owner-only: dead letters are events, with their properties. A file
  // made by an older version with wider permissions is narrowed too.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  FILE* file = fd < 0 ? nullptr : ::fdopen(fd, "a");
  if (file == nullptr) {
    if (fd >= 0) ::close(fd);
    LogError("capture: cannot write the dead-letter file", {{"path", path_}});
    return;
  }
  ::fchmod(fd, 0600);
  std::fwrite(line.data(), 1, line.size(), file);
  std::fflush(file);
  fdatasync(fd);
  std::fclose(file);
}

int64_t DeadLetterFile::lost() const {
  absl::MutexLock lock(&mu_);
  return lost_;
}

int64_t DeadLetterFile::count() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

namespace {

// SetEntry makes `event` the queue's entry for `block`'s i-th record,
// spooled at `location`.
void SetEntry(const std::shared_ptr<const RecordBlock>& block, size_t i,
              const SpoolLocation& location, QueuedEvent& event) {
  event.json = block->json(i);
  event.block = block;
  event.historical_migration = block->historical_migration(i);
  event.segment = location.segment;
  event.offset = location.offset + static_cast<int64_t>(block->offset(i));
}

}  // namespace

std::vector<QueuedEvent> QueueEntries(const std::shared_ptr<const RecordBlock>& block,
                                      const SpoolLocation& location) {
  std::vector<QueuedEvent> events(block->size());
  for (size_t i = 0; i < events.size(); ++i) SetEntry(block, i, location, events[i]);
  return events;
}

BatchSender::BatchSender(const PostHogClient* client, const KeyStore* keys,
                         DeadLetterFile* dead_letters, DeliveryOptions options, DeliveryEnv env)
    : client_(client),
      keys_(keys),
      dead_letters_(dead_letters),
      options_(options),
      env_(std::move(env)) {
  if (!env_.random) env_.random = DefaultRandom;
}

std::string BatchSender::Body(const std::vector<const QueuedEvent*>& batch, size_t begin,
                              size_t end, const Secret& key) const {
  size_t size = 128;
  for (size_t i = begin; i < end; ++i) size += batch[i]->json.size() + 1;
  std::string body;
  body.reserve(size);
  absl::StrAppend(
      &body, "{\"api_key\":", nlohmann::json(key.value()).dump(),
      ",\"historical_migration\":", batch[begin]->historical_migration ? "true" : "false",
      ",\"sent_at\":\"", FormatEventTime(env_.clock->Now()), "\",\"batch\":[");
  for (size_t i = begin; i < end; ++i) {
    if (i != begin) body.push_back(',');
    body.append(batch[i]->json.data(), batch[i]->json.size());
  }
  body.append("]}");
  return body;
}

void BatchSender::DeadLetter(const QueuedEvent& event, int http_status, absl::string_view reason,
                             absl::Status& outcome) {
  dead_letters_->Write(client_->project().alias, http_status, reason, event.json);
  outcome = absl::InvalidArgumentError(
      absl::StrCat("PostHog refused the event (HTTP ", http_status, "): ", reason));
}

bool BatchSender::WaitForNewKey(absl::string_view why) {
  const uint64_t generation = keys_->Generation();
  if (!paused_.exchange(true)) {
    LogError(
        "capture: PostHog refused the project API key; sending to this project is "
        "paused until the key changes (events stay spooled)",
        {{"project", client_->project().alias}, {"reason", std::string(why)}});
  }
  while (keys_->Generation() == generation) {
    if (!env_.clock->SleepFor(absl::Seconds(1), env_.stopping)) return false;
  }
  LogInfo("capture: the project API key changed; resuming",
          {{"project", client_->project().alias}});
  return true;
}

std::vector<absl::Status> BatchSender::Send(const std::vector<const QueuedEvent*>& batch) {
  std::vector<absl::Status> outcomes(batch.size(), absl::CancelledError("capture: stopping"));
  if (!batch.empty()) SendRange(batch, 0, batch.size(), outcomes);
  return outcomes;
}

bool BatchSender::SendRange(const std::vector<const QueuedEvent*>& batch, size_t begin, size_t end,
                            std::vector<absl::Status>& outcomes) {
  int attempt = 0;
  while (true) {
    absl::StatusOr<Secret> key = client_->Key(KeyKind::kProjectApiKey);
    if (!key.ok()) {
      if (!WaitForNewKey(key.status().message())) return false;
      continue;
    }
    PostHogRequest request;
    request.method = "POST";
    request.host = PostHogHost::kIngestion;
    request.path = BatchPath();
    request.body = Gzip(Body(batch, begin, end, *key));
    request.headers = {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}};
    CallContext context;
    context.deadline = env_.clock->Now() + options_.request_timeout;
    absl::StatusOr<HttpResponse> response = client_->Send(request, context);
    posts_.fetch_add(1);
    absl::Duration retry_after = absl::ZeroDuration();
    if (response.ok()) {
      const int status = response->status_code;
      if (status >= 200 && status < 300) {
        if (paused_.exchange(false)) {
          LogInfo("capture: PostHog accepts the project's key again",
                  {{"project", client_->project().alias}});
        }
        for (size_t i = begin; i < end; ++i) outcomes[i] = absl::OkStatus();
        return true;
      }
      if (status == 401 || status == 403) {
        if (!WaitForNewKey(absl::StrCat("HTTP ", status))) return false;
        attempt = 0;
        continue;
      }
      if (status == 413 || status == 400 || (status >= 400 && !Retryable(status))) {
        if (end - begin == 1) {
          DeadLetter(*batch[begin], status, Reason(*response), outcomes[begin]);
          return true;
        }
        // Split: 413 because the body is too large, 400 to find the events
        // PostHog refuses.
        const size_t middle = begin + (end - begin) / 2;
        return SendRange(batch, begin, middle, outcomes) && SendRange(batch, middle, end, outcomes);
      }
      retry_after = RetryAfter(*response, env_.clock->Now());
      if (attempt == 0 || attempt % 10 == 0) {
        LogWarning("capture: PostHog answered a retryable error; retrying",
                   {{"project", client_->project().alias},
                    {"http_status", absl::StrCat(status)},
                    {"attempt", absl::StrCat(attempt + 1)}});
      }
    } else if (attempt == 0 || attempt % 10 == 0) {
      LogWarning("capture: sending a batch failed; retrying",
                 {{"project", client_->project().alias},
                  {"error", RedactKeys(response.status().message())},
                  {"attempt", absl::StrCat(attempt + 1)}});
    }
    const absl::Duration delay = BackoffDelay(attempt, options_.initial_backoff,
                                              options_.max_backoff, env_.random(), retry_after);
    ++attempt;
    if (!env_.clock->SleepFor(delay, env_.stopping)) return false;
  }
}

ProjectQueue::ProjectQueue(const PostHogClient* client, const KeyStore* keys, Spool* spool,
                           DeadLetterFile* dead_letters, DeliveryOptions options, DeliveryEnv env)
    : spool_(spool),
      options_(options),
      env_([&] {
        env.stopping = [this] { return Stopping(); };
        return std::move(env);
      }()),
      sender_(client, keys, dead_letters, options, env_) {
  for (int64_t i = 0; i < options_.max_in_flight; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ProjectQueue::~ProjectQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
  absl::MutexLock lock(&mu_);
  for (QueuedEvent& event : queue_) {
    if (event.on_done) event.on_done(kStoppingStatus());
  }
}

bool ProjectQueue::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void ProjectQueue::Enqueue(std::vector<QueuedEvent> events, const SpoolLocation& location) {
  bool waited_on = false;
  for (const QueuedEvent& event : events) waited_on = waited_on || event.on_done != nullptr;
  const absl::Time now = env_.clock->Now();
  // One critical section: each unlock of mu_ evaluates the waiting workers'
  // conditions, and a durable unary call enqueues one event.
  absl::MutexLock lock(&mu_);
  // Once a backlog is on disk, later events join it there, keeping order.
  if (!waited_on &&
      (!on_disk_.empty() || queued_bytes_ + location.bytes > options_.max_queued_bytes)) {
    on_disk_.push_back(location);
    return;
  }
  QueueLocked(std::move(events), now);
}

void ProjectQueue::Enqueue(std::shared_ptr<const RecordBlock> block,
                           const SpoolLocation& location) {
  const absl::Time now = env_.clock->Now();
  absl::MutexLock lock(&mu_);
  // As above: a backlog on disk is joined there, keeping order.
  if (!on_disk_.empty() || queued_bytes_ + location.bytes > options_.max_queued_bytes) {
    on_disk_.push_back(location);
    return;
  }
  QueueBlockLocked(block, location, now);
}

void ProjectQueue::EnqueueOnDisk(const SpoolLocation& location) {
  absl::MutexLock lock(&mu_);
  on_disk_.push_back(location);
}

void ProjectQueue::LoadFromDisk() {
  const SpoolLocation location = on_disk_.front();
  on_disk_.pop_front();
  absl::StatusOr<std::shared_ptr<const RecordBlock>> block = spool_->ReadBlock(location);
  if (!block.ok()) {
    // Left in the spool: delivered after a restart's replay.
    LogError("capture: cannot read back spooled events; they wait for a restart",
             {{"error", std::string(block.status().message())}});
    return;
  }
  QueueBlockLocked(*block, location, absl::InfinitePast());  // Due at once.
}

void ProjectQueue::EnqueueReplayed(std::vector<QueuedEvent> events) {
  const absl::Time now = env_.clock->Now();
  absl::MutexLock lock(&mu_);
  QueueLocked(std::move(events), now);
}

void ProjectQueue::QueueBlockLocked(const std::shared_ptr<const RecordBlock>& block,
                                    const SpoolLocation& location, absl::Time now) {
  // Each entry made in place: no vector of entries moved in afterwards.
  for (size_t i = 0; i < block->size(); ++i) {
    SetEntry(block, i, location, queue_.emplace_back());
    enqueue_times_.push_back(now);
  }
  queued_bytes_ += block->json_bytes();
}

void ProjectQueue::QueueLocked(std::vector<QueuedEvent> events, absl::Time now) {
  for (QueuedEvent& event : events) {
    queued_bytes_ += static_cast<int64_t>(event.json.size());
    queue_.push_back(std::move(event));
    enqueue_times_.push_back(now);
  }
}

int64_t ProjectQueue::queued() const {
  absl::MutexLock lock(&mu_);
  int64_t count = static_cast<int64_t>(queue_.size());
  for (const SpoolLocation& location : on_disk_) count += location.count;
  return count;
}

void ProjectQueue::WorkerLoop() {
  auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || static_cast<int64_t>(queue_.size()) >= options_.batch_max_events ||
           queued_bytes_ >= options_.batch_max_bytes;
  };
  auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty() || !on_disk_.empty();
  };
  while (true) {
    std::vector<QueuedEvent> batch;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        mu_.Await(absl::Condition(&any));
        if (stopping_) return;
        // Refill from disk while memory holds less than a batch.
        while (!on_disk_.empty() &&
               static_cast<int64_t>(queue_.size()) < options_.batch_max_events &&
               queued_bytes_ < options_.batch_max_bytes) {
          LoadFromDisk();
        }
        if (queue_.empty()) continue;
        if (full()) break;
        mu_.AwaitWithDeadline(absl::Condition(&full),
                              enqueue_times_.front() + options_.flush_interval);
        if (stopping_) return;
        // Another worker may have taken the batch meanwhile.
        if (!queue_.empty() &&
            (full() || env_.clock->Now() >= enqueue_times_.front() + options_.flush_interval)) {
          break;
        }
      }
      if (stopping_) return;
      const bool historical = queue_.front().historical_migration;
      // Moved under the lock: no reallocation (and moves again) on the way.
      batch.reserve(static_cast<size_t>(
          std::min<int64_t>(static_cast<int64_t>(queue_.size()), options_.batch_max_events)));
      int64_t bytes = 0;
      while (!queue_.empty() && static_cast<int64_t>(batch.size()) < options_.batch_max_events &&
             queue_.front().historical_migration == historical &&
             (batch.empty() || bytes + static_cast<int64_t>(queue_.front().json.size()) <=
                                   options_.batch_max_bytes)) {
        bytes += static_cast<int64_t>(queue_.front().json.size());
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
        enqueue_times_.pop_front();
      }
      queued_bytes_ -= bytes;
    }
    std::vector<const QueuedEvent*> pointers;
    pointers.reserve(batch.size());
    for (const QueuedEvent& event : batch) pointers.push_back(&event);
    const std::vector<absl::Status> outcomes = sender_.Send(pointers);
    std::vector<RecordRef> done;
    done.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      // Stopping (cancelled): the event stays spooled and is delivered after
      // a restart.
      if (!absl::IsCancelled(outcomes[i])) done.push_back({batch[i].segment, batch[i].offset});
    }
    spool_->Release(done);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].on_done) continue;
      batch[i].on_done(absl::IsCancelled(outcomes[i]) ? kStoppingStatus() : outcomes[i]);
    }
  }
}

}  // namespace posthog_gateway
