#include "server/capture/spool_disk.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace posthog_gateway {
namespace {

class PosixDisk final : public SpoolDisk {
 public:
  int Open(const char* path, int flags, mode_t mode) override { return ::open(path, flags, mode); }

  ssize_t WriteAt(int fd, const iovec* chunks, int count, int64_t offset) override {
    return ::pwritev(fd, chunks, count, static_cast<off_t>(offset));
  }

  int DataSync(int fd) override { return ::fdatasync(fd); }

  int Rename(const char* from, const char* to) override { return ::rename(from, to); }
};

}  // namespace

SpoolDisk* PosixSpoolDisk() {
  static PosixDisk* const disk = new PosixDisk();
  return disk;
}

}  // namespace posthog_gateway
