// Fuzzes the spool's record decoding: the input is written as a segment file
// (segment-1.log) of an otherwise empty spool directory, which Spool::Open
// then replays; every run it reports is read back with Spool::Read and
// released. The directory is on /dev/shm when there is one (tmpfs: the
// spool's fdatasync costs nothing there).

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "server/capture/spool.h"

namespace {

std::string ScratchDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir =
      base != nullptr ? base : (std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
  dir += "/spool_fuzzer." + std::to_string(::getpid());
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = ScratchDir();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    const int fd = ::open((dir + "/segment-1.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t written = ::write(fd, data + done, size - done);
      if (written <= 0) std::abort();
      done += static_cast<size_t>(written);
    }
    ::close(fd);
  }
  posthog_gateway::SpoolOptions options;
  options.dir = dir;
  options.segment_bytes = 4096;
  options.max_bytes = 1 << 20;
  auto opened = posthog_gateway::Spool::Open(options);
  if (opened.ok()) {
    for (const posthog_gateway::ReplayedRun& run : opened->replayed) {
      const auto records = opened->spool->Read(run.location);
      if (!records.ok()) continue;
      std::vector<posthog_gateway::RecordRef> refs;
      for (int64_t offset : posthog_gateway::Spool::RecordOffsets(run.location, *records)) {
        refs.push_back({run.location.segment, offset});
      }
      opened->spool->Release(refs);
    }
  }
  opened = absl::UnknownError("closed");  // Stops the spool's threads before the next input.
  std::filesystem::remove_all(dir);
  return 0;
}
