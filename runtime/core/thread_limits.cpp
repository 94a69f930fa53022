#include "runtime/core/thread_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"

namespace dptrain {

namespace {

constexpr size_t kNoLimit = ProcessRoom::kNoLimit;
// OpenBLAS 0.3 on x86-64 maps BUFFER_SIZE (128 MiB) plus a page for each work buffer.
constexpr size_t kOpenBlasBufferBytes = (size_t{128} << 20) + 4096;
// glibc's thread stack when RLIMIT_STACK is unlimited (ARCH_STACK_DEFAULT_SIZE on x86-64).
constexpr size_t kUnlimitedStackBytes = size_t{2} << 20;
// The data loader: one serving thread and at most 4 decoding ones (BatchLoader::default_decode_threads).
constexpr size_t kLoaderThreads = 5;

size_t soft_limit(int resource) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return kNoLimit;
  return static_cast<size_t>(limit.rlim_cur);
}

// A "Key:   N" line of /proc/self/status; 0 when absent.
size_t status_value(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, key.size() + 1, key + ":") != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    unsigned long long value = 0;
    if (fields >> value) return static_cast<size_t>(value);
  }
  return 0;
}

size_t saturating_add(size_t a, size_t b) { return a > kNoLimit - b ? kNoLimit : a + b; }

size_t saturating_mul(size_t a, size_t b) { return b != 0 && a > kNoLimit / b ? kNoLimit : a * b; }

// The threads `threads` compute threads add to the process: all but the main one, and the loader's.
size_t added_threads(size_t threads, const ThreadCosts& costs) {
  return (threads > 0 ? threads - 1 : 0) + costs.loader_threads;
}

}  // namespace

size_t thread_bytes(size_t threads, const ThreadCosts& costs) {
  const size_t buffers = saturating_mul(threads, costs.blas_buffers * costs.blas_buffer_bytes);
  return saturating_add(buffers, saturating_mul(added_threads(threads, costs), costs.stack_bytes));
}

ThreadFit fit_threads(size_t requested, const ProcessRoom& room, const ThreadCosts& costs) {
  ThreadFit fit;
  fit.bytes_needed = thread_bytes(requested, costs);
  fit.bytes_left = room.address_space_limit == kNoLimit ? kNoLimit
                   : room.address_space_limit > room.address_space_used
                       ? room.address_space_limit - room.address_space_used
                       : 0;
  const size_t threads_left = room.process_limit == kNoLimit ? kNoLimit
                              : room.process_limit > room.threads_running
                                  ? room.process_limit - room.threads_running
                                  : 0;
  fit.largest = requested;
  while (fit.largest > 0 && thread_bytes(fit.largest, costs) > fit.bytes_left) --fit.largest;
  if (fit.largest < requested) fit.limit = ThreadLimit::AddressSpace;
  const size_t before = fit.largest;
  while (fit.largest > 0 && added_threads(fit.largest, costs) > threads_left) --fit.largest;
  if (fit.largest < before || (fit.largest == 0 && added_threads(1, costs) > threads_left)) {
    fit.limit = ThreadLimit::Processes;
  }
  return fit;
}

size_t parse_omp_stack_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  size_t digits = i;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == i || digits - i > 15) return 0;
  const size_t number = std::stoull(text.substr(i, digits - i));
  std::string unit = text.substr(digits);
  unit.erase(std::remove_if(unit.begin(), unit.end(), [](unsigned char c) { return std::isspace(c); }), unit.end());
  const char u = unit.empty() ? 'k' : static_cast<char>(std::tolower(static_cast<unsigned char>(unit[0])));
  if (unit.size() > 1) return 0;
  switch (u) {
    case 'b':
      return number;
    case 'k':
      return saturating_mul(number, size_t{1} << 10);
    case 'm':
      return saturating_mul(number, size_t{1} << 20);
    case 'g':
      return saturating_mul(number, size_t{1} << 30);
    default:
      return 0;
  }
}

ThreadCosts thread_costs() {
  ThreadCosts costs;
  costs.blas_buffer_bytes = kOpenBlasBufferBytes;
  costs.loader_threads = kLoaderThreads;
  for (const char* name : {"OMP_STACKSIZE", "GOMP_STACKSIZE"}) {
    const char* value = std::getenv(name);
    if (value && parse_omp_stack_size(value) > 0) {
      costs.stack_bytes = parse_omp_stack_size(value);
      return costs;
    }
  }
  const size_t stack = soft_limit(RLIMIT_STACK);
  costs.stack_bytes = stack == kNoLimit ? kUnlimitedStackBytes : stack;
  return costs;
}

ProcessRoom process_room() {
  ProcessRoom room;
  room.address_space_limit = soft_limit(RLIMIT_AS);
  room.address_space_used = saturating_mul(status_value("VmSize"), 1024);
  room.process_limit = soft_limit(RLIMIT_NPROC);
  room.threads_running = status_value("Threads");
  return room;
}

void check_thread_limits(size_t threads, const std::string& where) {
  const ThreadCosts costs = thread_costs();
  const ProcessRoom room = process_room();
  const ThreadFit fit = fit_threads(threads, room, costs);
  const std::string count = std::to_string(threads) + (threads == 1 ? " thread" : " threads");
  const std::string fix = fit.largest == 0 ? "not even 1 fits: raise the limit"
                                           : "set threads to at most " + std::to_string(fit.largest) +
                                                 " (--set threads=" + std::to_string(fit.largest) +
                                                 "), or raise the limit";
  if (fit.limit == ThreadLimit::AddressSpace) {
    throw ConfigError(where + ": " + count + " need " + byte_size_text(fit.bytes_needed) +
                      " of address space (each " + std::to_string(costs.blas_buffers) + " OpenBLAS buffers of " +
                      byte_size_text(costs.blas_buffer_bytes) + " and a stack of " +
                      byte_size_text(costs.stack_bytes) + ", and " + std::to_string(costs.loader_threads) +
                      " data loader threads), but only " + byte_size_text(fit.bytes_left) + " is left under ulimit -v (" +
                      byte_size_text(room.address_space_limit) + ", " + byte_size_text(room.address_space_used) +
                      " in use); " + fix);
  }
  if (fit.limit == ThreadLimit::Processes) {
    throw ConfigError(where + ": " + count + " and " + std::to_string(costs.loader_threads) +
                      " data loader threads add " + std::to_string(added_threads(threads, costs)) +
                      " threads to this process, but ulimit -u allows " + std::to_string(room.process_limit) +
                      " processes and threads for the user and this process already runs " +
                      std::to_string(room.threads_running) + "; " + fix);
  }
  // The server buffers are mapped by openblas_set_num_threads, right after this; the callers' buffers and
  // the threads' stacks only at the first step, after the data is loaded: set those aside.
  set_address_space_reserved(saturating_add(saturating_mul(threads, costs.blas_buffer_bytes),
                                            saturating_mul(added_threads(threads, costs), costs.stack_bytes)));
}

}  // namespace dptrain
