// Fuzz-target helpers: the input as a file that the readers open by path, without touching the disk.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

}  // namespace dptrain::fuzz
