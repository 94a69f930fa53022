// Context: the device a worker computes on and the CPU threads it may use.
#pragma once

#include <cstddef>

#include "runtime/tensor.h"

namespace dptrain {

// Per-worker compute settings. Creating one sets the OpenMP and BLAS thread counts.
class Context {
 public:
  // `num_threads` 0 means: OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else every core this
  // process may run on.
  explicit Context(DeviceKind device = DeviceKind::CPU, size_t num_threads = 0);

  DeviceKind device() const { return device_; }
  size_t num_threads() const { return num_threads_; }

 private:
  DeviceKind device_;
  size_t num_threads_;
};

// The thread count `Context(…, 0)` would choose.
size_t default_thread_count();

}  // namespace dptrain
