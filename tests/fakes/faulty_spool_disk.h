#ifndef TESTS_FAKES_FAULTY_SPOOL_DISK_H_
#define TESTS_FAKES_FAULTY_SPOOL_DISK_H_

// FaultySpoolDisk is the real disk (PosixSpoolDisk) with failures on demand:
// the next N calls of one kind on segment files (`*.log`: the records'
// path, not the spare the spool's background thread prepares, whose calls
// would otherwise take the failures at random) fail with a chosen errno
// (EIO, ENOSPC), as a failing or full disk makes them fail. It counts the
// calls it failed. It can also hold syncs of segment files until the test
// releases them, one by one and in any order, each succeeding or failing:
// that is how tests see groups overlap and complete in order.
//
//   FaultySpoolDisk disk;
//   options.disk = &disk;
//   disk.FailSyncs(1, EIO);   // The next fdatasync fails.
//
//   disk.HoldSyncs();          // Syncs wait from now on; each gets a ticket
//   ...                        // (0, 1, ...) in the order it arrived.
//   disk.AwaitHeldSyncs(2);    // Two syncs are waiting.
//   disk.ReleaseSync(1, 0);    // The second returns (after really syncing).
//   disk.ReleaseSync(0, EIO);  // The first fails.
//
// Thread-safe.

#include <cerrno>
#include <map>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "server/capture/spool_disk.h"

namespace posthog_gateway::test_support {

class FaultySpoolDisk final : public SpoolDisk {
 public:
  // The next `count` calls of each kind fail with `error`.
  void FailOpens(int count, int error) { Set(&opens_, count, error); }
  void FailWrites(int count, int error) { Set(&writes_, count, error); }
  void FailSyncs(int count, int error) { Set(&syncs_, count, error); }
  void FailRenames(int count, int error) { Set(&renames_, count, error); }

  // How many calls failed so far.
  int failed() const {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

  int Open(const char* path, int flags, mode_t mode) override {
    const bool segment = absl::EndsWith(path, ".log");
    if (segment && Fail(&opens_)) return -1;
    const int fd = PosixSpoolDisk()->Open(path, flags, mode);
    if (fd >= 0) {
      // The spool closes files itself: a number may come back for another
      // file.
      absl::MutexLock lock(&mu_);
      if (segment) {
        segment_fds_.insert(fd);
      } else {
        segment_fds_.erase(fd);
      }
    }
    return fd;
  }

  ssize_t WriteAt(int fd, const iovec* chunks, int count, int64_t offset) override {
    if (IsSegment(fd) && Fail(&writes_)) return -1;
    return PosixSpoolDisk()->WriteAt(fd, chunks, count, offset);
  }

  // Syncs of segment files arriving from now on wait for ReleaseSync.
  void HoldSyncs() {
    absl::MutexLock lock(&mu_);
    holding_ = true;
  }

  // Blocks until `count` syncs arrived since HoldSyncs (returned or not).
  void AwaitHeldSyncs(int count) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this, count]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return next_ticket_ >= count; };
    mu_.Await(absl::Condition(&arrived));
  }

  // How many syncs arrived since HoldSyncs (returned or not).
  int HeldSyncs() const {
    absl::MutexLock lock(&mu_);
    return next_ticket_;
  }

  // Lets held sync `ticket` go on: it syncs for real when `error` is 0, else
  // fails with `error`.
  void ReleaseSync(int ticket, int error) {
    absl::MutexLock lock(&mu_);
    released_[ticket] = error;
  }

  // Whether held sync `ticket` has returned to the spool.
  bool SyncReturned(int ticket) const {
    absl::MutexLock lock(&mu_);
    return returned_.count(ticket) > 0;
  }

  int DataSync(int fd) override {
    if (!IsSegment(fd)) return PosixSpoolDisk()->DataSync(fd);
    int ticket = -1;
    int held_error = 0;
    {
      absl::MutexLock lock(&mu_);
      if (holding_) {
        ticket = next_ticket_++;
        auto released = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return released_.count(ticket) > 0;
        };
        mu_.Await(absl::Condition(&released));
        held_error = released_[ticket];
        if (held_error != 0) ++failed_;
      }
    }
    int result = -1;
    if (held_error != 0) {
      errno = held_error;
    } else if (ticket < 0 && Fail(&syncs_)) {
      result = -1;
    } else {
      result = PosixSpoolDisk()->DataSync(fd);
    }
    if (ticket >= 0) {
      const int saved = errno;
      absl::MutexLock lock(&mu_);
      returned_.insert(ticket);
      errno = saved;
    }
    return result;
  }

  int Rename(const char* from, const char* to) override {
    if (Fail(&renames_)) return -1;
    return PosixSpoolDisk()->Rename(from, to);
  }

 private:
  struct Fault {
    int left = 0;
    int error = 0;
  };

  void Set(Fault* fault, int count, int error) {
    absl::MutexLock lock(&mu_);
    *fault = {count, error};
  }

  bool IsSegment(int fd) const {
    absl::MutexLock lock(&mu_);
    return segment_fds_.count(fd) > 0;
  }

  // Whether this call fails; sets errno when it does.
  bool Fail(Fault* fault) {
    absl::MutexLock lock(&mu_);
    if (fault->left <= 0) return false;
    --fault->left;
    ++failed_;
    errno = fault->error;
    return true;
  }

  mutable absl::Mutex mu_;
  Fault opens_ ABSL_GUARDED_BY(mu_);
  Fault writes_ ABSL_GUARDED_BY(mu_);
  Fault syncs_ ABSL_GUARDED_BY(mu_);
  Fault renames_ ABSL_GUARDED_BY(mu_);
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  int next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, int> released_ ABSL_GUARDED_BY(mu_);
  std::set<int> returned_ ABSL_GUARDED_BY(mu_);
  std::set<int> segment_fds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace posthog_gateway::test_support

#endif  // TESTS_FAKES_FAULTY_SPOOL_DISK_H_
