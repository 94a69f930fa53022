#include "runtime/core/context.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include <cstdlib>
#include <string>

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

size_t default_thread_count(size_t workers_on_node) {
  if (size_t n = positive_env("OMP_NUM_THREADS")) return n;
  if (size_t n = positive_env("SLURM_CPUS_PER_TASK")) return n;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const size_t n = static_cast<size_t>(CPU_COUNT(&set));
    const size_t online = static_cast<size_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    // Every core visible: the workers on this node were not bound, so they share the cores.
    if (n > 0 && n >= online && workers_on_node > 1) return std::max<size_t>(1, n / workers_on_node);
    if (n > 0) return n;
  }
  return 1;
}

size_t local_rank_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    const char* text = std::getenv(name);
    if (!text || !*text) continue;
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (end && *end == '\0' && v >= 0) return static_cast<size_t>(v);
  }
  return 0;
}

Context::Context(DeviceKind device, size_t num_threads, size_t workers_on_node, std::optional<size_t> local_rank,
                 Precision precision, Determinism determinism, CpuConvolution cpu_convolution)
    : configured_precision_(precision),
      num_threads_(num_threads ? num_threads : default_thread_count(workers_on_node)) {
  BackendRequest request;
  request.workers_on_node = workers_on_node;
  request.local_rank = local_rank ? *local_rank : local_rank_from_environment();
  request.precision = precision;
  request.determinism = determinism;
  request.cpu_convolution = cpu_convolution;
  backend_ = open_backend(device, request);
  omp_set_num_threads(static_cast<int>(num_threads_));
  openblas_set_num_threads(static_cast<int>(num_threads_));
}

Context::~Context() = default;

std::string Context::describe_precision() const {
  const Precision used = precision();
  std::string text = to_string(used);
  if (used == Precision::Bf16) text += " (float32 master weights)";
  if (used != configured_precision_) {
    text += std::string(" (") + to_string(configured_precision_) + " has no effect on the " + backend_->name() + ")";
  }
  return text;
}

}  // namespace dptrain
