// The transport bound of a durable unary CaptureEvent: a gRPC server that
// answers posthog.v1.CaptureService/CaptureEvent the way the gateway's
// durable path does (acknowledged after a group's fdatasync, the reply
// finished from the thread that synced) but builds, authorizes, logs and
// spools nothing. What CaptureEvent reaches here against the no-op
// (grpc.health.v1.Health/Check, the gateway's HealthService, on the same
// server) is the most a durable call could reach on this machine through
// gRPC 1.51: the rest is gRPC's handling of a call completed later from
// another thread, and the disk's sync. Served over the gateway's transport
// (its own ApplyServerOptions with the default `server` configuration), as
// bench/flags/reply_bound_server is.
//
// --mode picks how a call is answered:
//   inline    the callback handler finishes the call itself (a no-op with
//             CaptureEvent's request and reply);
//   deferred  the callback handler queues the call; committer threads
//             (--committers, named spool-commit as the spool's are) take
//             what is queued as a group, write the group's bytes
//             (--record_bytes per call, one pwrite) into a preallocated file
//             in --dir and fdatasync them (unless --sync=false), then finish
//             the group's calls. The spool's shape and its rule for
//             overlapping syncs (a second group starts while one syncs only
//             once --overlap_min calls wait), without building, encoding or
//             ordering anything;
//   cq        the same deferral on the completion-queue (async) API:
//             --cq_threads threads (named cq-poll) poll one completion
//             queue; a thread that takes a new call queues it and, by the
//             same rule, takes the queue as a group, writes, syncs and
//             finishes it, and again while the rule holds, then polls
//             again; at most --committers (and at most --cq_threads - 1)
//             commit at once, so that another thread polls meanwhile. With
//             --sync=false a call is mostly finished by the thread that
//             received it.
// Every reply carries a 36-character uuid, as the gateway's does. The
// measurements behind it: bench/README.md ("The durable transport bound").
//
//   deferred_bound_server --mode=deferred --dir=/tmp/x --port_file=/tmp/port
//     [--sync=false] [--committers=4] [--overlap_min=8] [--record_bytes=400]
//     [--cq_threads=2] [--health=false]

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/arena.h"
#include "grpcpp/grpcpp.h"
#include "posthog/v1/capture.grpc.pb.h"
#include "server/config/config.h"
#include "server/grpc/arena_message_allocator.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/health_service.h"

ABSL_FLAG(std::string, mode, "deferred", "inline, deferred or cq");
ABSL_FLAG(bool, sync, true, "deferred and cq: write and fdatasync each group in --dir");
ABSL_FLAG(std::string, dir, "/tmp", "where the group file goes (the spool's disk)");
ABSL_FLAG(int, record_bytes, 400, "bytes written per call (about an event's spool record)");
ABSL_FLAG(int, committers, 4,
          "deferred: committer threads; cq: most threads committing at once (at most "
          "--cq_threads - 1, so that one polls); the spool's max_syncs_in_flight");
ABSL_FLAG(int, overlap_min, 8,
          "a group starts while another syncs only when this many calls wait (the spool's "
          "overlap_min_appends)");
ABSL_FLAG(int, cq_threads, 2, "cq: threads polling the completion queue");
ABSL_FLAG(bool, health, true,
          "serve grpc.health.v1.Health (the no-op) too; false with --mode=cq leaves no callback "
          "service, so gRPC starts no callback threads");
ABSL_FLAG(std::string, port_file, "", "where to write the port chosen on 127.0.0.1");

namespace {

using posthog::v1::CaptureEventRequest;
using posthog::v1::CaptureEventResponse;
using posthog::v1::CaptureService;

constexpr char kUuid[] = "01890000-0000-7000-8000-000000000000";
// The group file wraps around at this size: preallocated and synced first,
// as the spool's segments are, so a sync flushes data, not the file's size.
constexpr int64_t kFileBytes = 64 << 20;

// GroupFile is what committers write to: one preallocated file, written
// group after group at increasing offsets, with an open file description
// per committer (as the spool's segments have), so that syncs overlap.
class GroupFile {
 public:
  // Exits the process when the file cannot be made: a benchmark without
  // its disk would measure something else.
  GroupFile(const std::string& dir, int record_bytes, int committers) : record_(record_bytes, 'r') {
    const std::string path = absl::StrCat(dir, "/deferred-bound-", getpid());
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    const std::string zeros(1 << 20, '\0');
    for (int64_t done = 0; ok && done < kFileBytes; done += zeros.size()) {
      ok = ::write(fd, zeros.data(), zeros.size()) == static_cast<ssize_t>(zeros.size());
    }
    ok = ok && ::fsync(fd) == 0;
    for (int i = 0; ok && i < committers; ++i) {
      fds_.push_back(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      ok = fds_.back() >= 0;
    }
    // Gone from the directory at once: the server ends by being killed.
    ::unlink(path.c_str());
    if (fd >= 0) ::close(fd);
    if (!ok) {
      std::perror(path.c_str());
      std::exit(1);
    }
  }

  // Where a group of `calls` goes. Under the caller's lock.
  int64_t Reserve(size_t calls) {
    const int64_t bytes = static_cast<int64_t>(calls * record_.size());
    if (next_ + bytes > kFileBytes) next_ = 0;
    const int64_t offset = next_;
    next_ += bytes;
    return offset;
  }

  // Writes `calls` records at `offset` in one write through committer
  // `index`'s description and syncs them. Thread-safe for distinct indexes.
  void Commit(int index, int64_t offset, size_t calls, std::string* buffer) {
    buffer->clear();
    for (size_t i = 0; i < calls; ++i) *buffer += record_;
    if (::pwrite(fds_[index], buffer->data(), buffer->size(), offset) !=
            static_cast<ssize_t>(buffer->size()) ||
        ::fdatasync(fds_[index]) != 0) {
      std::perror("pwrite/fdatasync");
      std::exit(1);
    }
  }

 private:
  const std::string record_;
  std::vector<int> fds_;
  int64_t next_ = 0;  // Guarded by the caller's lock.
};

// The spool's rule for taking a group (server/capture/spool.h): a free
// committer takes what is queued when no group is syncing or returning, or
// when at least `overlap_min` calls wait; fewer wait for the committer whose
// sync returns, which takes them with the rest.
bool Takes(size_t queued, int busy, int overlap_min) {
  return queued > 0 && (busy == 0 || static_cast<int>(queued) >= overlap_min);
}

// inline and deferred: the gateway's shape (callback API, request and
// response on an arena).
class CallbackCapture final
    : public CaptureService::WithCallbackMethod_CaptureEvent<CaptureService::Service> {
 public:
  // deferred: `committers` threads; `file` is null with --sync=false.
  CallbackCapture(bool deferred, int committers, int overlap_min, std::unique_ptr<GroupFile> file)
      : deferred_(deferred), overlap_min_(overlap_min), file_(std::move(file)) {
    SetMessageAllocatorFor_CaptureEvent(&messages_);
    for (int i = 0; deferred_ && i < committers; ++i) {
      std::thread([this, i] { CommitterLoop(i); }).detach();  // Until the process is killed.
    }
  }

  grpc::ServerUnaryReactor* CaptureEvent(grpc::CallbackServerContext* context,
                                         const CaptureEventRequest* request,
                                         CaptureEventResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (!deferred_) {
      response->set_uuid(kUuid);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    // Whoever unlocks evaluates the committers' condition: a call queued
    // below the overlap threshold wakes nobody.
    absl::MutexLock lock(&mu_);
    queue_.push_back({reactor, response});
    return reactor;
  }

 private:
  struct Pending {
    grpc::ServerUnaryReactor* reactor;
    CaptureEventResponse* response;
  };

  void CommitterLoop(int index) {
    pthread_setname_np(pthread_self(), "spool-commit");
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return Takes(queue_.size(), busy_, overlap_min_);
    };
    std::vector<Pending> group;
    std::string buffer;
    bool returning = false;
    while (true) {
      int64_t offset = 0;
      {
        absl::MutexLock lock(&mu_);
        if (returning) --busy_;
        mu_.Await(absl::Condition(&has_work));
        group.assign(queue_.begin(), queue_.end());
        queue_.clear();
        ++busy_;
        if (file_ != nullptr) offset = file_->Reserve(group.size());
      }
      returning = true;
      if (file_ != nullptr) file_->Commit(index, offset, group.size(), &buffer);
      for (const Pending& call : group) {
        call.response->set_uuid(kUuid);
        call.reactor->Finish(grpc::Status::OK);
      }
    }
  }

  const bool deferred_;
  const int overlap_min_;
  const std::unique_ptr<GroupFile> file_;
  posthog_gateway::ArenaMessageAllocator<CaptureEventRequest, CaptureEventResponse> messages_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  // Committers with a group: syncing it or finishing its calls.
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
};

// cq: the completion-queue API, with threads of our own.
class CqCapture {
 public:
  // At most `committers` threads commit at once (the others poll).
  CqCapture(int committers, int overlap_min, std::unique_ptr<GroupFile> file)
      : max_busy_(committers), overlap_min_(overlap_min), file_(std::move(file)) {
    for (int i = 0; i < committers; ++i) free_indexes_.push_back(i);
  }

  grpc::Service* service() { return &service_; }

  // After the server is built: requests calls and starts the threads, which
  // run until the process is killed.
  void Start(std::unique_ptr<grpc::ServerCompletionQueue> cq, int threads) {
    cq_ = std::move(cq);
    // Calls requested ahead, so that one arriving while every thread is
    // busy is matched at once (each taken call requests the next).
    for (int i = 0; i < 64; ++i) RequestCall();
    for (int t = 0; t < threads; ++t) {
      std::thread([this] { PollLoop(); }).detach();
    }
  }

 private:
  struct Call {
    Call() : arena(posthog_gateway::arena_internal::FirstBlock(block, sizeof(block))) {
      request = google::protobuf::Arena::CreateMessage<CaptureEventRequest>(&arena);
      response = google::protobuf::Arena::CreateMessage<CaptureEventResponse>(&arena);
    }
    char block[8 << 10];
    google::protobuf::Arena arena;
    grpc::ServerContext context;
    CaptureEventRequest* request;
    CaptureEventResponse* response;
    grpc::ServerAsyncResponseWriter<CaptureEventResponse> writer{&context};
    bool finishing = false;
  };

  void RequestCall() {
    Call* call = new Call;
    service_.RequestCaptureEvent(&call->context, call->request, &call->writer, cq_.get(), cq_.get(),
                                 call);
  }

  void PollLoop() {
    pthread_setname_np(pthread_self(), "cq-poll");
    void* tag = nullptr;
    bool ok = false;
    std::vector<Call*> group;
    std::string buffer;
    while (cq_->Next(&tag, &ok)) {
      Call* call = static_cast<Call*>(tag);
      if (call->finishing || !ok) {
        delete call;
        continue;
      }
      RequestCall();
      absl::MutexLock lock(&mu_);
      queue_.push_back(call);
      // Commits (the spool's rule) while there is work for it, then polls
      // again; meanwhile the other threads poll and queue.
      while (busy_ < max_busy_ && Takes(queue_.size(), busy_, overlap_min_)) {
        group.assign(queue_.begin(), queue_.end());
        queue_.clear();
        ++busy_;
        const int index = free_indexes_.back();
        free_indexes_.pop_back();
        const int64_t offset = file_ != nullptr ? file_->Reserve(group.size()) : 0;
        mu_.Unlock();
        if (file_ != nullptr) file_->Commit(index, offset, group.size(), &buffer);
        for (Call* member : group) {
          member->response->set_uuid(kUuid);
          member->finishing = true;
          member->writer.Finish(*member->response, grpc::Status::OK, member);
        }
        mu_.Lock();
        --busy_;
        free_indexes_.push_back(index);
      }
    }
  }

  CaptureService::WithAsyncMethod_CaptureEvent<CaptureService::Service> service_;
  const int max_busy_;
  const int overlap_min_;
  const std::unique_ptr<GroupFile> file_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  absl::Mutex mu_;
  std::deque<Call*> queue_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  // The file descriptions no committing thread uses now.
  std::vector<int> free_indexes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As the gateway's main does: Debian's Abseil leaves absl::Mutex's
  // deadlock detection on, which would cost this server (and only it) a
  // process-wide lock graph update on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "inline" && mode != "deferred" && mode != "cq") {
    std::fprintf(stderr, "--mode must be inline, deferred or cq\n");
    return 2;
  }
  const int cq_threads = std::max(1, absl::GetFlag(FLAGS_cq_threads));
  const int committers =
      mode == "cq" ? std::max(1, std::min(absl::GetFlag(FLAGS_committers), cq_threads - 1))
                   : std::max(1, absl::GetFlag(FLAGS_committers));
  const int overlap_min = absl::GetFlag(FLAGS_overlap_min);
  std::unique_ptr<GroupFile> file;
  if (mode != "inline" && absl::GetFlag(FLAGS_sync)) {
    file = std::make_unique<GroupFile>(absl::GetFlag(FLAGS_dir), absl::GetFlag(FLAGS_record_bytes),
                                       committers);
  }
  std::unique_ptr<CallbackCapture> callback;
  std::unique_ptr<CqCapture> async;
  posthog_gateway::HealthService health;
  health.SetServing("", true);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  posthog_gateway::ApplyServerOptions(posthog_gateway::ServerConfig(), &builder);
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  if (mode == "cq") {
    async = std::make_unique<CqCapture>(committers, overlap_min, std::move(file));
    builder.RegisterService(async->service());
    cq = builder.AddCompletionQueue();
  } else {
    callback = std::make_unique<CallbackCapture>(mode == "deferred", committers, overlap_min,
                                                 std::move(file));
    builder.RegisterService(callback.get());
  }
  if (absl::GetFlag(FLAGS_health)) builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1\n");
    return 1;
  }
  if (async != nullptr) async->Start(std::move(cq), cq_threads);
  // Written whole, then renamed: whoever waits for the file reads a port.
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  std::ofstream(port_file + ".tmp") << port << "\n";
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  server->Wait();  // Until killed.
  return 0;
}
