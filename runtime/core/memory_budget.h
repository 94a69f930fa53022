// The memory a run may use, and checks of planned allocations and input files against it, made before
// anything is allocated.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>

namespace dptrain {

// The memory this process may still allocate, and what sets that bound.
struct MemoryBudget {
  size_t bytes = 0;    // the smallest of the limits below, less what is in use against it
  std::string source;  // "available physical memory", "the cgroup's memory.max", "ulimit -v", "ulimit -d"
};

// Reads the limits now: available physical memory (MemAvailable), the cgroup v2 memory.max less
// memory.current when set, and RLIMIT_AS / RLIMIT_DATA less this process's use (under RLIMIT_AS also
// less what set_address_space_reserved set aside).
MemoryBudget memory_budget();

// Sets aside `bytes` of address space that this process will map later on its own (thread stacks and
// OpenBLAS buffers, check_thread_limits): memory_budget() counts them as used under ulimit -v. Replaces
// an earlier amount; 0 sets nothing aside.
void set_address_space_reserved(size_t bytes);

// Checks a planned allocation of `bytes` for `what` ("the labels of data.h5:/train/labels"), whose
// size was set by config key `key` ("train.batch_size", "data.shape"). Throws AllocationError naming
// all three, the budget and its source when it does not fit. Allocates nothing.
void reserve(size_t bytes, const std::string& what, const std::string& key);

// The product of `factors` in bytes; AllocationError naming `what` and `key` when it overflows size_t.
size_t checked_bytes(std::initializer_list<size_t> factors, const std::string& what, const std::string& key);

// "512 B", "3.5 MiB", "28.0 GiB".
std::string byte_size_text(size_t bytes);

// The size of a regular file, refusing before anything is read what would never end or is not a file:
// a directory, a device such as /dev/zero, a FIFO or socket. Returns false and sets `*why` ("is a
// directory, not a file", "is a device, not a regular file") when `path` is not a regular file, and
// false with `*why` empty when it cannot be looked at (missing, no permission): the caller's own
// attempt to open it then says why.
bool regular_file_size(const std::string& path, size_t* size, std::string* why);

}  // namespace dptrain
