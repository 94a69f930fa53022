// Whether a run's `threads` fit the process's limits (ulimit -v, ulimit -u) and what each thread costs,
// checked before any thread pool starts: OpenBLAS loops forever when it cannot map a work buffer, and
// libgomp aborts when it cannot create a thread, so a count that does not fit must be refused first.
#pragma once

#include <cstddef>
#include <string>

namespace dptrain {

// The address space one compute thread costs, and the threads a run starts besides the compute ones.
struct ThreadCosts {
  size_t stack_bytes = 0;          // a thread's stack: OMP_STACKSIZE (or GOMP_STACKSIZE), else ulimit -s
  size_t blas_buffers = 2;         // OpenBLAS work buffers per thread: its own, and one for each thread that calls it
  size_t blas_buffer_bytes = 0;    // one buffer (OpenBLAS's BUFFER_SIZE: 128 MiB on x86-64, plus a page)
  size_t loader_threads = 0;       // the data loader's threads (one serving, up to 4 decoding), a stack each
  size_t per_thread() const { return blas_buffers * blas_buffer_bytes + stack_bytes; }
};

// Room left in this process, read at start-up; kNoLimit where no limit is set.
struct ProcessRoom {
  static constexpr size_t kNoLimit = ~size_t{0};
  size_t address_space_limit = kNoLimit;  // RLIMIT_AS (ulimit -v), bytes
  size_t address_space_used = 0;          // this process's VmSize, bytes
  size_t process_limit = kNoLimit;        // RLIMIT_NPROC (ulimit -u): processes and threads of the user
  size_t threads_running = 0;             // this process's threads now
};

// Which limit bounds the number of threads.
enum class ThreadLimit { None, AddressSpace, Processes };

// How many compute threads fit.
struct ThreadFit {
  size_t largest = 0;                     // the most compute threads that fit, at most the count asked for; may be 0
  ThreadLimit limit = ThreadLimit::None;  // None: the count asked for fits
  size_t bytes_needed = 0;                // address space the count asked for needs
  size_t bytes_left = 0;                  // address space left under RLIMIT_AS (kNoLimit without one)
};

// The address space `threads` compute threads need: two OpenBLAS buffers and a stack each (the first
// thread's stack is the process's own), and a stack for each loader thread.
size_t thread_bytes(size_t threads, const ThreadCosts& costs);

// How many of `requested` compute threads fit `room` at `costs`: the address space they need within
// what RLIMIT_AS leaves, and the threads they add (requested - 1 + loader threads) within RLIMIT_NPROC
// less this process's threads (other processes of the user count too, so this is an upper bound).
ThreadFit fit_threads(size_t requested, const ProcessRoom& room, const ThreadCosts& costs);

// The costs in this process: OMP_STACKSIZE / GOMP_STACKSIZE ("512K", "16M", a number of KiB), else the
// soft RLIMIT_STACK (2 MiB when unlimited, as glibc does), and OpenBLAS's buffer size.
ThreadCosts thread_costs();

// The limits and use of this process now.
ProcessRoom process_room();

// Parses an OpenMP stack size ("16M", "512k", "1G", "100B", "4096": KiB); 0 when it is not one.
size_t parse_omp_stack_size(const std::string& text);

// Refuses `threads` compute threads that do not fit this process (fit_threads on process_room() and
// thread_costs()) with a ConfigError naming `where` ("run.yaml: threads"), the limit, what the threads
// need, and the largest value that fits. When they fit, sets their address space aside in
// memory_budget() (set_address_space_reserved), so that data and model allocations checked later leave
// room for the OpenBLAS buffers mapped at the first step.
void check_thread_limits(size_t threads, const std::string& where);

}  // namespace dptrain
