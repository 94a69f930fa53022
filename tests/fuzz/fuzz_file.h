// Fuzz-target helpers: the input as a file that the readers open by path.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace dptrain::fuzz {

// The bytes of one input in an anonymous memory file (memfd), opened by the readers through
// /proc/self/fd/N as if it were a file on disk; closed again when it goes out of scope.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("dptrain-fuzz-input", MFD_CLOEXEC)) {
    if (fd_ < 0) fail("memfd_create");
    size_t done = 0;
    while (done < size) {
      const ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) fail("write");
      done += static_cast<size_t>(n);
    }
  }
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  [[noreturn]] static void fail(const char* what) {
    std::perror(what);
    std::abort();
  }
  int fd_;
};

// The bytes of one input in a file of this process in /dev/shm (memory, where it exists) or the temp
// folder, for readers that need a real path (HDF5 resolves it); removed when it goes out of scope.
class TempFile {
 public:
  TempFile(const uint8_t* data, size_t size) {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    path_ = std::string(dir) + "/dptrain-fuzz-" + std::to_string(getpid()) + ".h5";
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
  }
  ~TempFile() { unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A refusal, printed when DPTRAIN_FUZZ_VERBOSE is set (replaying one input: why was it refused?).
inline void refused(const std::exception& error) {
  static const bool verbose = std::getenv("DPTRAIN_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "refused: %s\n", error.what());
}

}  // namespace dptrain::fuzz
