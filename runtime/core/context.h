// Context: the device a worker computes on and the CPU threads it may use.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "runtime/core/device.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Per-worker compute settings. Creating one sets the OpenMP and BLAS thread counts and, for
// DeviceKind::CUDA, binds this worker to the GPU of its local rank and creates its streams and
// cuBLAS/cuDNN handles (released when the Context is destroyed).
class Context {
 public:
  // `num_threads` 0 means default_thread_count(workers_on_node). `local_rank` defaults to
  // local_rank_from_environment(). For CUDA, a UsageError when no GPU is visible or when this node
  // has more workers than GPUs. `precision` is the GPU's: the CPU computes float32 (tf32 is
  // accepted there and changes nothing), and bf16 on the CPU is a UsageError.
  explicit Context(DeviceKind device = DeviceKind::CPU, size_t num_threads = 0, size_t workers_on_node = 1,
                   std::optional<size_t> local_rank = std::nullopt, Precision precision = Precision::Float32);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  DeviceKind device() const { return device_; }
  size_t num_threads() const { return num_threads_; }
  // The bound GPU, or nullptr on the CPU.
  const BoundDevice* bound_device() const { return bound_.get(); }
  // "cpu" or the GPU's description.
  std::string describe_device() const;
  // The precision in effect: float32 on the CPU, the configured one on the GPU.
  Precision precision() const;
  // The precision in effect, and why it differs from the configured one where it does:
  // "bf16 (float32 master weights)", "float32 (tf32 has no effect on the cpu)".
  std::string describe_precision() const;

 private:
  DeviceKind device_;
  Precision configured_precision_;
  size_t num_threads_;
  std::unique_ptr<BoundDevice> bound_;
};

// OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else the cores this process may run on — divided
// among `workers_on_node` workers when the launcher did not bind them to separate cores.
size_t default_thread_count(size_t workers_on_node = 1);

// This worker's rank among the workers of its node, from the launcher's environment
// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID); 0 when there is none.
size_t local_rank_from_environment();

// GPUs this process can use: 0 when the build has no CUDA backend, or there is no driver or no
// device (then `why`, when given, says which). Never prints and never throws.
size_t visible_gpu_count(std::string* why = nullptr);

// The device that config value `choice` ("auto", "cpu" or "cuda") means here: auto is cuda when a
// GPU is visible, else cpu.
DeviceKind resolve_device(const std::string& choice);

}  // namespace dptrain
