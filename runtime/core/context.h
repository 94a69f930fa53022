// Context: the backend a worker computes with and the CPU threads it may use.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "runtime/core/backend.h"
#include "runtime/core/backend_registry.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Per-worker compute settings. Creating one sets the OpenMP and BLAS thread counts and opens the
// backend of `device` from the backend registry: for DeviceKind::CUDA that binds this worker to
// the GPU of its local rank and creates its streams and cuBLAS/cuDNN handles (released when the
// Context is destroyed). Everything made with backend() must be destroyed before the Context.
class Context {
 public:
  // `num_threads` 0 means default_thread_count(workers_on_node). `local_rank` defaults to
  // local_rank_from_environment(). For CUDA, a UsageError when no GPU is visible or when this node
  // has more workers than GPUs. `precision` is the GPU's: the CPU computes float32 (tf32 is
  // accepted there and changes nothing), and bf16 on the CPU is a UsageError. `determinism` limits
  // the GPU's convolution algorithms (the CPU is deterministic either way); `cpu_convolution` the CPU's conv2d kernels.
  explicit Context(DeviceKind device = DeviceKind::CPU, size_t num_threads = 0, size_t workers_on_node = 1,
                   std::optional<size_t> local_rank = std::nullopt, Precision precision = Precision::Float32,
                   Determinism determinism = Determinism::Fastest,
                   CpuConvolution cpu_convolution = CpuConvolution::Auto);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The backend this worker computes with: pass it to Model, make_optimizer and make_device_communicator.
  Backend& backend() { return *backend_; }
  DeviceKind device() const { return backend_->device(); }
  size_t num_threads() const { return num_threads_; }
  // "cpu" or the GPU's description.
  std::string describe_device() const { return backend_->describe(); }
  // The precision in effect: float32 on the CPU, the configured one on the GPU.
  Precision precision() const { return backend_->precision(); }
  // The precision in effect, and why it differs from the configured one where it does:
  // "bf16 (float32 master weights)", "float32 (tf32 has no effect on the cpu)".
  std::string describe_precision() const;

 private:
  Precision configured_precision_;
  size_t num_threads_;
  std::unique_ptr<Backend> backend_;
};

// OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else the cores this process may run on — divided
// among `workers_on_node` workers when the launcher did not bind them to separate cores.
size_t default_thread_count(size_t workers_on_node = 1);

// This worker's rank among the workers of its node, from the launcher's environment
// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID); 0 when there is none.
size_t local_rank_from_environment();

}  // namespace dptrain
