// Context: the device a worker computes on and the CPU threads it may use.
#pragma once

#include <cstddef>

#include "runtime/tensor.h"

namespace dptrain {

// Per-worker compute settings. Creating one sets the OpenMP and BLAS thread counts.
class Context {
 public:
  // `num_threads` 0 means default_thread_count(workers_on_node).
  explicit Context(DeviceKind device = DeviceKind::CPU, size_t num_threads = 0, size_t workers_on_node = 1);

  DeviceKind device() const { return device_; }
  size_t num_threads() const { return num_threads_; }

 private:
  DeviceKind device_;
  size_t num_threads_;
};

// OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else the cores this process may run on — divided
// among `workers_on_node` workers when the launcher did not bind them to separate cores.
size_t default_thread_count(size_t workers_on_node = 1);

}  // namespace dptrain
