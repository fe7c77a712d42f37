#ifndef SERVER_CAPTURE_SPOOL_DISK_H_
#define SERVER_CAPTURE_SPOOL_DISK_H_

// SpoolDisk is the spool's way to the disk for the calls whose failure it
// must survive without losing an acknowledged event: creating a segment,
// writing records, syncing them, renaming the preallocated spare into
// place. The real one is POSIX (PosixSpoolDisk); tests put a fake in front
// of it that fails chosen calls (a full disk, an I/O error) to check that
// the spool answers UNAVAILABLE, acknowledges nothing it did not sync and
// recovers when the disk does. Reading back and replay stay plain POSIX:
// a failure there is reported as damage, which tests make with real files.
//
// Each method is the system call of the same name and keeps its contract:
// a result of -1 sets errno. Implementations are thread-safe.

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>

namespace posthog_gateway {

class SpoolDisk {
 public:
  virtual ~SpoolDisk() = default;

  // open(2) of a segment or the spare for writing.
  virtual int Open(const char* path, int flags, mode_t mode) = 0;
  // pwritev(2): returns the bytes written (maybe fewer than asked).
  virtual ssize_t WriteAt(int fd, const iovec* chunks, int count, int64_t offset) = 0;
  // fdatasync(2).
  virtual int DataSync(int fd) = 0;
  // rename(2).
  virtual int Rename(const char* from, const char* to) = 0;
};

// The real disk. Never null; lives for the whole process.
SpoolDisk* PosixSpoolDisk();

}  // namespace posthog_gateway

#endif  // SERVER_CAPTURE_SPOOL_DISK_H_
