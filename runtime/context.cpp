#include "runtime/context.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <string>

#include "runtime/errors.h"

namespace dptrain {

namespace {

size_t positive_env(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return 0;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  return (end && *end == '\0' && v > 0) ? static_cast<size_t>(v) : 0;
}

}  // namespace

size_t default_thread_count() {
  if (size_t n = positive_env("OMP_NUM_THREADS")) return n;
  if (size_t n = positive_env("SLURM_CPUS_PER_TASK")) return n;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<size_t>(n);
  }
  return 1;
}

Context::Context(DeviceKind device, size_t num_threads)
    : device_(device), num_threads_(num_threads ? num_threads : default_thread_count()) {
  if (device_ != DeviceKind::CPU) {
    throw UsageError("device 'cuda' is not available: this build has only the cpu backend (set device: cpu)");
  }
  omp_set_num_threads(static_cast<int>(num_threads_));
  openblas_set_num_threads(static_cast<int>(num_threads_));
}

}  // namespace dptrain
