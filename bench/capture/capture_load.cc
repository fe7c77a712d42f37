// capture_load: drives the gateway's CaptureService and prints what it
// measured, one `key=value` line per figure.
//
//   capture_load --target=HOST:PORT --mode=stream --events=1000000
//       N client streams (--streams), --per_message events per message, at
//       most --window unacknowledged messages per stream. Prints the
//       gateway's acknowledged events/s.
//   capture_load --target=HOST:PORT --mode=unary|noop --seconds=10
//       --threads callers in a loop of CaptureEvent (unary) or
//       grpc.health.v1.Health/Check (noop, the ceiling of a unary RPC on the
//       same server). Prints calls/s and latency p50/p99.
//   capture_load --mode=fsync --dir=DIR --syncs=2000 [--sync_threads=1]
//       The floor under a durable call: the latency of this disk's
//       fdatasync as the spool uses it (a small write into a preallocated,
//       synced file, then fdatasync), p50/p90/p99/max, and syncs/s. With
//       --sync_threads=2 two threads sync at once, each its own file
//       description on one file (the overlapped group commit).

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/capture.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "The gateway.");
ABSL_FLAG(std::string, mode, "stream", "stream, unary or noop.");
ABSL_FLAG(int64_t, events, 1000000, "stream: events to send in total.");
ABSL_FLAG(int, streams, 4, "stream: concurrent streams (one channel each).");
ABSL_FLAG(int, per_message, 500, "stream: events per message.");
ABSL_FLAG(int, window, 8, "stream: unacknowledged messages per stream.");
ABSL_FLAG(int, threads, 16, "unary/noop: concurrent callers.");
ABSL_FLAG(int, channels, 4, "unary/noop: channels the callers share.");
ABSL_FLAG(int, seconds, 10, "unary/noop: duration.");
ABSL_FLAG(std::string, dir, "/tmp", "fsync: where the probe file goes (the spool's disk).");
ABSL_FLAG(int, syncs, 2000, "fsync: syncs to time (per thread).");
ABSL_FLAG(int, sync_threads, 1, "fsync: threads syncing at once.");
ABSL_FLAG(int, record_bytes, 4096, "fsync: bytes written before each sync (a group's records).");

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kStreamMethod[] = "/posthog.v1.CaptureService/StreamCaptureEvents";

posthog::v1::Event MakeEvent(int64_t n) {
  posthog::v1::Event event;
  event.set_event("bench event");
  event.set_distinct_id(absl::StrCat("user-", n % 10000));
  auto& fields = *event.mutable_properties()->mutable_fields();
  fields["plan"].set_string_value("pro");
  fields["amount"].set_number_value(static_cast<double>(n % 1000));
  fields["$current_url"].set_string_value("https://example.com/checkout");
  return event;
}

std::shared_ptr<grpc::Channel> NewChannel(int index) {
  grpc::ChannelArguments args;
  // Distinct arguments: separate connections.
  args.SetInt("bench.channel", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(),
                                   args);
}

std::atomic<int> replaced_channels{0};

// ConnectedChannel returns channel `index` once it is connected. About one
// load in 90 had a channel whose first connect failed ("failed to connect
// to all addresses ... No such file or directory") and that stayed in
// reconnect backoff for the whole window while the other channels served:
// a figure for three channels' callers presented as all of them. Such a
// channel is replaced by a new connection (other arguments, so not the
// same pooled subchannel) and counted in `replaced_channels=`.
std::shared_ptr<grpc::Channel> ConnectedChannel(int index) {
  constexpr int kAttempts = 3;
  std::shared_ptr<grpc::Channel> channel;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    channel = NewChannel(index + attempt * 100000);
    if (channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      return channel;
    }
    ++replaced_channels;
    std::fprintf(stderr, "channel %d: not connected after 5 s (state %d), attempt %d of %d\n",
                 index, static_cast<int>(channel->GetState(false)), attempt + 1, kAttempts);
  }
  return channel;  // Its calls fail and are counted as errors.
}

int RunStream() {
  const int streams = absl::GetFlag(FLAGS_streams);
  const int per_message = absl::GetFlag(FLAGS_per_message);
  const int window = absl::GetFlag(FLAGS_window);
  const int64_t total = absl::GetFlag(FLAGS_events);
  const int64_t messages_per_stream = total / streams / per_message;
  std::atomic<int64_t> acknowledged{0};
  std::atomic<int> failed{0};
  std::atomic<int> spool_full{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      std::shared_ptr<grpc::Channel> channel = ConnectedChannel(s);
      grpc::ClientContext context;
      // The stream as raw bytes: every message is the same request, so it is
      // serialized once and each Write only takes a reference to its slice.
      // Serializing it per message (500 Structs) was half of this load
      // generator's CPU, on the cores the gateway is measured on
      // (bench/README.md). The bytes on the wire are the same.
      const grpc::internal::RpcMethod method(kStreamMethod,
                                             grpc::internal::RpcMethod::BIDI_STREAMING, channel);
      std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
          grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
              channel.get(), method, &context));
      grpc::ByteBuffer request;
      {
        posthog::v1::StreamCaptureEventsRequest message;
        for (int i = 0; i < per_message; ++i) {
          *message.add_events() = MakeEvent(int64_t{s} * 1000003 + i);
        }
        grpc::Slice slice(message.SerializeAsString());
        request = grpc::ByteBuffer(&slice, 1);
      }
      // The writer sleeps while the window is full and the reader wakes it:
      // the load generator shares the cores with the gateway, so it must not
      // spin (a yield loop cost more CPU per event than the gateway).
      std::mutex window_mu;
      std::condition_variable window_cv;
      int64_t acked_messages = 0;  // Guarded by window_mu.
      bool reader_done = false;    // Guarded by window_mu.
      std::thread reader([&] {
        grpc::ByteBuffer bytes;
        posthog::v1::StreamCaptureEventsResponse response;
        int64_t last = 0;
        while (stream->Read(&bytes)) {
          if (!grpc::GenericDeserialize<grpc::ProtoBufferReader,
                                        posthog::v1::StreamCaptureEventsResponse>(&bytes, &response)
                   .ok()) {
            break;  // Not a response: the stream's end reports the failure.
          }
          acknowledged += response.acknowledged_count() - last;
          last = response.acknowledged_count();
          std::lock_guard<std::mutex> lock(window_mu);
          acked_messages = last / per_message;
          window_cv.notify_one();
        }
        std::lock_guard<std::mutex> lock(window_mu);
        reader_done = true;  // The stream ended (an error): stop writing.
        window_cv.notify_one();
      });
      for (int64_t m = 0; m < messages_per_stream; ++m) {
        {
          std::unique_lock<std::mutex> lock(window_mu);
          window_cv.wait(lock, [&] { return m - acked_messages < window || reader_done; });
          if (reader_done) break;
        }
        if (!stream->Write(request)) break;
      }
      stream->WritesDone();
      reader.join();
      grpc::Status status = stream->Finish();
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++spool_full;  // Expected when an outage fills the spool.
      } else if (!status.ok()) {
        ++failed;
        std::fprintf(stderr, "stream %d: %s\n", s, status.error_message().c_str());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("acknowledged_events=%lld\n", static_cast<long long>(acknowledged.load()));
  std::printf("seconds=%.3f\n", seconds);
  std::printf("acknowledged_events_per_second=%.0f\n", acknowledged.load() / seconds);
  std::printf("failed_streams=%d\n", failed.load());
  std::printf("spool_full_streams=%d\n", spool_full.load());
  std::printf("replaced_channels=%d\n", replaced_channels.load());
  return failed.load() == 0 ? 0 : 1;
}

int RunUnary(bool noop) {
  const int threads_count = absl::GetFlag(FLAGS_threads);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < absl::GetFlag(FLAGS_channels); ++c) channels.push_back(ConnectedChannel(c));
  const auto deadline = Clock::now() + std::chrono::seconds(absl::GetFlag(FLAGS_seconds));
  std::mutex mu;
  std::vector<double> latencies_us;
  std::atomic<int64_t> errors{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back([&, t] {
      auto channel = channels[t % channels.size()];
      auto capture = posthog::v1::CaptureService::NewStub(channel);
      auto health = grpc::health::v1::Health::NewStub(channel);
      posthog::v1::CaptureEventRequest request;
      *request.mutable_event() = MakeEvent(t);
      grpc::health::v1::HealthCheckRequest check;
      std::vector<double> mine;
      while (Clock::now() < deadline) {
        grpc::ClientContext context;
        const auto begin = Clock::now();
        grpc::Status status;
        if (noop) {
          grpc::health::v1::HealthCheckResponse response;
          status = health->Check(&context, check, &response);
        } else {
          posthog::v1::CaptureEventResponse response;
          status = capture->CaptureEvent(&context, request, &response);
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
        if (!status.ok() && errors++ < 3) {
          std::fprintf(stderr, "call failed: %d %s\n", static_cast<int>(status.error_code()),
                       status.error_message().c_str());
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto percentile = [&](double p) {
    return latencies_us.empty() ? 0.0
                                : latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))];
  };
  std::printf("calls=%zu\n", latencies_us.size());
  std::printf("errors=%lld\n", static_cast<long long>(errors.load()));
  std::printf("calls_per_second=%.0f\n", latencies_us.size() / seconds);
  std::printf("p50_us=%.0f\n", percentile(0.50));
  std::printf("p99_us=%.0f\n", percentile(0.99));
  std::printf("replaced_channels=%d\n", replaced_channels.load());
  return errors.load() == 0 ? 0 : 1;
}

// RunFsync times what a group commit waits for. The file is preallocated
// and synced first, as the spool's segments are, so each sync flushes data
// only.
int RunFsync() {
  const int threads_count = absl::GetFlag(FLAGS_sync_threads);
  const int syncs = absl::GetFlag(FLAGS_syncs);
  const size_t record = static_cast<size_t>(absl::GetFlag(FLAGS_record_bytes));
  const std::string path = absl::StrCat(absl::GetFlag(FLAGS_dir), "/fsync-probe-", getpid());
  const size_t file_bytes = record * static_cast<size_t>(syncs) * threads_count;
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::perror(path.c_str());
      return 1;
    }
    const std::string zeros(1 << 20, '\0');
    for (size_t done = 0; done < file_bytes;) {
      const size_t step = std::min(zeros.size(), file_bytes - done);
      if (::write(fd, zeros.data(), step) != static_cast<ssize_t>(step)) {
        std::perror("write");
        return 1;
      }
      done += step;
    }
    if (::fsync(fd) != 0) std::perror("fsync");
    ::close(fd);
  }
  std::mutex mu;
  std::vector<double> latencies_us;
  std::atomic<size_t> next_offset{0};
  std::atomic<int> failures{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back([&] {
      // Its own open file description: a sync reports the writeback errors
      // of the file to each description that has not seen them.
      const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        ++failures;
        return;
      }
      const std::string data(record, 'x');
      std::vector<double> mine;
      mine.reserve(syncs);
      for (int i = 0; i < syncs; ++i) {
        const size_t offset = next_offset.fetch_add(record);
        if (::pwrite(fd, data.data(), record, static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(record)) {
          ++failures;
          break;
        }
        const auto begin = Clock::now();
        if (::fdatasync(fd) != 0) ++failures;
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
      }
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::unlink(path.c_str());
  std::sort(latencies_us.begin(), latencies_us.end());
  auto percentile = [&](double p) {
    return latencies_us.empty() ? 0.0
                                : latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))];
  };
  std::printf("fsync_threads=%d\n", threads_count);
  std::printf("fsyncs=%zu\n", latencies_us.size());
  std::printf("fsyncs_per_second=%.0f\n", latencies_us.size() / seconds);
  std::printf("fsync_p50_us=%.0f\n", percentile(0.50));
  std::printf("fsync_p90_us=%.0f\n", percentile(0.90));
  std::printf("fsync_p99_us=%.0f\n", percentile(0.99));
  std::printf("fsync_max_us=%.0f\n", latencies_us.empty() ? 0.0 : latencies_us.back());
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "stream") return RunStream();
  if (mode == "unary") return RunUnary(false);
  if (mode == "noop") return RunUnary(true);
  if (mode == "fsync") return RunFsync();
  std::fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
  return 2;
}
