// CudaBackend: the Backend of one GPU (CUDA runtime memory and copies, the runtime's kernels),
// owning the CudaContext that the CUDA layers and the NCCL communicator are given.
#pragma once

#include <memory>
#include <string>

#include "runtime/core/backend.h"
#include "runtime/core/backend_registry.h"
#include "runtime/core/cuda/cuda_context.h"

namespace dptrain {

// Work is queued on the context's compute stream; copies that involve host memory wait for it,
// so they return once the host memory may be reused.
class CudaBackend final : public Backend {
 public:
  // Binds this process to device `ordinal` (see CudaContext).
  CudaBackend(size_t ordinal, Precision precision, Determinism determinism = Determinism::Fastest)
      : context_(ordinal, precision, determinism) {}

  const char* name() const override { return "cuda"; }
  DeviceKind device() const override { return DeviceKind::CUDA; }
  std::string describe() const override { return context_.describe(); }
  Precision precision() const override { return context_.precision(); }

  void* allocate(size_t bytes) override;
  void release(void* data) noexcept override;
  void* allocate_pinned(size_t bytes) override;
  void release_pinned(void* data) noexcept override;

  void copy_to_device(void* device_dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void copy_on_device(void* device_dst, const void* device_src, size_t bytes) override;
  void fill(float* device_data, size_t count, float value) override;
  void synchronize() override;

  std::unique_ptr<BatchStager> make_stager(size_t max_floats, size_t max_labels) override;
  void convert(const Tensor& from, Tensor& to, Accumulate mode) override;

  void axpy(float alpha, const float* x, float* y, size_t n) override;
  void copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t row_floats,
                 size_t rows) override;
  void scale(float* x, size_t n, float alpha) override;
  double sum_squares(const float* x, size_t n) override;
  void clip_to_norm(float* x, const std::vector<ElementSpan>& spans, double max_norm, double* norm) override;

  void sgd_update(const SgdUpdate& update) override;
  void adam_update(const AdamUpdate& update) override;

  CudaContext& context() { return context_; }

 private:
  CudaContext context_;
  DeviceBuffer clip_scratch_;  // (spans * blocks + 1) double: clip_to_norm's partial sums and coefficient
};

// The CUDA context of `backend`; DeviceError when it is not a CudaBackend (what the CUDA layers
// and NCCL are given comes from the registries, which pair them with the cuda backend only).
CudaContext& cuda_context(Backend& backend);

// Visible CUDA devices; 0 (never an error, nothing printed) when there is no driver or no device,
// `why` then saying which.
size_t cuda_device_count(std::string* why);

// A CudaBackend on the GPU gpu_for_worker (gpu_selection.h) picks: the only visible one, else the
// local rank's. UsageError when no GPU is visible or when several are and the node has more workers
// than GPUs; bf16 on a GPU older than sm_80 as CudaContext says.
std::unique_ptr<Backend> open_cuda_backend(const BackendRequest& request);

}  // namespace dptrain
