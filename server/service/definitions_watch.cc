#include "server/service/definitions_watch.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "posthog/v1/flag.pb.h"
#include "server/posthog/json_struct.h"

namespace posthog_gateway {
namespace {

constexpr char kShuttingDown[] = "the gateway is shutting down";

// `message`'s bytes in a buffer whose slice owns them.
grpc::ByteBuffer Serialize(const posthog::v1::WatchFlagDefinitionsResponse& message) {
  auto* bytes = new std::string(message.SerializeAsString());
  grpc::Slice slice(
      bytes->data(), bytes->size(), [](void* owned) { delete static_cast<std::string*>(owned); },
      bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// WatchFlagDefinitions' messages: the definitions whole, or `etag`,
// `stale` and `fetch_time` without them.
class WatchResponseFormat final : public DefinitionsWatch::Format {
 public:
  void Build(DefinitionsWatch::Messages& messages) const override {
    const flags::DefinitionsSnapshot& snapshot = *messages.snapshot;
    posthog::v1::WatchFlagDefinitionsResponse message;
    message.set_etag(snapshot.etag.empty() ? absl::StrCat("g", snapshot.generation)
                                           : snapshot.etag);
    message.set_stale(snapshot.stale);
    if (snapshot.fetch_time != absl::InfinitePast()) {
      *message.mutable_fetch_time() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(snapshot.fetch_time));
    }
    messages.without_definitions = Serialize(message);
    if (snapshot.definitions != nullptr) {
      *message.mutable_definitions() = StructFromJson(snapshot.definitions->raw());
      messages.with_definitions = Serialize(message);
      messages.with_changes = messages.with_definitions;
    }
  }
};

class RefusedStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

class DefinitionsWatch::Stream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  Stream(DefinitionsWatch* watch, StreamLimits::Slot slot)
      : watch_(watch), slot_(std::move(slot)) {}

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Offer makes `messages` the newest state and writes it if the caller
  // needs it now. With a write in flight, OnWriteDone offers it again.
  void Offer(std::shared_ptr<const Messages> messages) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_ || writing_) {
        if (!ended_) newest_ = std::move(messages);
        return;
      }
      newest_ = std::move(messages);
      if (!ChooseWrite(absl::Now())) return;
      writing_ = true;
    }
    StartWrite(&buffer_);
  }

  // End finishes the stream with `status` (after the write in flight).
  void End(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;
      if (writing_) {
        end_status_ = std::move(status);
        return;
      }
    }
    Finish(std::move(status));
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !ended_) {
        ended_ = true;  // The caller went away.
        end_status_ = grpc::Status::CANCELLED;
      }
      if (ended_) {
        finish = std::move(end_status_);
      } else {
        write = writing_ = ChooseWrite(absl::Now());
      }
    }
    if (finish.has_value()) {
      Finish(*std::move(finish));
    } else if (write) {
      StartWrite(&buffer_);
    }
  }

  void OnCancel() override { End(grpc::Status::CANCELLED); }

  void OnDone() override {
    watch_->Remove(this);
    { StreamLimits::Slot ended = std::move(slot_); }  // The stream no longer counts.
    Unref();
  }

 private:
  // ChooseWrite puts what the caller needs of `newest_` in `buffer_`, if
  // anything: the definitions when they are not the ones it has, else a
  // message without them when the state changed or a heartbeat is due.
  bool ChooseWrite(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const flags::DefinitionsSnapshot& snapshot = *newest_->snapshot;
    if (!sent_any_ && watch_->opening_.Valid()) {
      buffer_ = watch_->opening_;
      sent_definitions_ = snapshot.definitions;
    } else if (snapshot.definitions != nullptr && snapshot.definitions != sent_definitions_) {
      buffer_ = sent_definitions_ != nullptr && sent_definitions_ == newest_->previous_definitions
                    ? newest_->with_changes
                    : newest_->with_definitions;
      sent_definitions_ = snapshot.definitions;
    } else if (!sent_any_ || snapshot.generation != sent_generation_ ||
               now - last_write_ >= watch_->heartbeat_) {
      buffer_ = newest_->without_definitions;
    } else {
      return false;
    }
    sent_any_ = true;
    sent_generation_ = snapshot.generation;
    last_write_ = now;
    return true;
  }

  DefinitionsWatch* const watch_;
  // Released in OnDone (gRPC calls it once, after every other callback).
  StreamLimits::Slot slot_;
  std::atomic<int> refs_{1};  // gRPC's, dropped in OnDone.
  absl::Mutex mu_;
  std::shared_ptr<const Messages> newest_ ABSL_GUARDED_BY(mu_);
  // The message being written: set by ChooseWrite while no write is in
  // flight, read by gRPC until OnWriteDone.
  grpc::ByteBuffer buffer_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> end_status_ ABSL_GUARDED_BY(mu_);
  bool sent_any_ ABSL_GUARDED_BY(mu_) = false;
  // Held, not just pointed at: freed definitions could share an address
  // with new ones, which the caller would then never get.
  std::shared_ptr<const flags::CompiledDefinitions> sent_definitions_ ABSL_GUARDED_BY(mu_);
  uint64_t sent_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_write_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

DefinitionsWatch::DefinitionsWatch(flags::DefinitionsStore* store, absl::Duration heartbeat,
                                   std::unique_ptr<const Format> format)
    : store_(store),
      heartbeat_(heartbeat),
      format_(format != nullptr ? std::move(format) : std::make_unique<WatchResponseFormat>()),
      opening_(format_->Opening()) {}

DefinitionsWatch::~DefinitionsWatch() {
  Shutdown();
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

std::shared_ptr<const DefinitionsWatch::Messages> DefinitionsWatch::Build(
    std::shared_ptr<const flags::DefinitionsSnapshot> snapshot,
    std::shared_ptr<const flags::CompiledDefinitions> previous_definitions) const {
  auto messages = std::make_shared<Messages>();
  messages->snapshot = std::move(snapshot);
  messages->previous_definitions = std::move(previous_definitions);
  format_->Build(*messages);
  return messages;
}

std::shared_ptr<const DefinitionsWatch::Messages> DefinitionsWatch::MessagesFor(
    std::shared_ptr<const flags::DefinitionsSnapshot> snapshot) {
  std::shared_ptr<const flags::CompiledDefinitions> previous;
  {
    absl::MutexLock lock(&mu_);
    if (latest_ != nullptr && latest_->snapshot->generation >= snapshot->generation) {
      return latest_;
    }
    if (latest_ != nullptr) previous = latest_->snapshot->definitions;
  }
  // Outside the lock.
  std::shared_ptr<const Messages> built = Build(std::move(snapshot), std::move(previous));
  absl::MutexLock lock(&mu_);
  if (latest_ == nullptr || latest_->snapshot->generation < built->snapshot->generation) {
    latest_ = std::move(built);
  }
  return latest_;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* DefinitionsWatch::Refuse(grpc::Status status) {
  return new RefusedStream(std::move(status));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* DefinitionsWatch::Open(StreamLimits::Slot slot) {
  // The current state first: the thread may not have seen the last change.
  std::shared_ptr<const Messages> latest = MessagesFor(store_->Current());
  auto* stream = new Stream(this, std::move(slot));
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || store_->stopped()) {
      delete stream;
      return Refuse(grpc::Status(grpc::StatusCode::UNAVAILABLE, kShuttingDown));
    }
    streams_.insert(stream);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  stream->Offer(std::move(latest));
  return stream;
}

void DefinitionsWatch::Run() {
  // Heartbeats are due `heartbeat_` after each stream's last message; looking
  // four times per period keeps them within a quarter period of due, and at
  // least every 200 ms notices Shutdown soon (the store's wait cannot).
  const absl::Duration look_every =
      std::clamp(heartbeat_ / 4, absl::Milliseconds(5), absl::Milliseconds(200));
  std::shared_ptr<const Messages> latest = MessagesFor(store_->Current());
  while (true) {
    std::shared_ptr<const flags::DefinitionsSnapshot> snapshot =
        store_->WaitForChange(latest->snapshot->generation, look_every);
    {
      absl::MutexLock lock(&mu_);
      if (shut_down_) return;
    }
    if (store_->stopped()) {
      Shutdown();
      return;
    }
    latest = MessagesFor(std::move(snapshot));
    OfferToAll(latest);
  }
}

void DefinitionsWatch::OfferToAll(const std::shared_ptr<const Messages>& messages) {
  std::vector<Stream*> streams;
  {
    absl::MutexLock lock(&mu_);
    for (Stream* stream : streams_) {
      stream->Ref();
      streams.push_back(stream);
    }
  }
  for (Stream* stream : streams) {
    stream->Offer(messages);
    stream->Unref();
  }
}

void DefinitionsWatch::Shutdown() {
  std::vector<Stream*> streams;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (Stream* stream : streams_) {
      stream->Ref();
      streams.push_back(stream);
    }
  }
  for (Stream* stream : streams) {
    stream->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, kShuttingDown));
    stream->Unref();
  }
}

void DefinitionsWatch::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

size_t DefinitionsWatch::Streams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace posthog_gateway
