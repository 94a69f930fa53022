// The Backend over the CUDA runtime API: memory, copies and kernels on the context's compute stream.
#include "runtime/core/cuda/cuda_backend.h"

#include <algorithm>

#include "runtime/core/cuda/batch_stager.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"
#include "runtime/core/gpu_selection.h"

namespace dptrain {

void* CudaBackend::allocate(size_t bytes) {
  void* p = nullptr;
  DPTRAIN_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void CudaBackend::release(void* data) noexcept {
  // Queued kernels may still use the memory; cudaFree waits for the device. Must not throw.
  if (data) cudaFree(data);
}

void* CudaBackend::allocate_pinned(size_t bytes) {
  void* p = nullptr;
  DPTRAIN_CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

void CudaBackend::release_pinned(void* data) noexcept {
  if (data) cudaFreeHost(data);
}

void CudaBackend::copy_to_device(void* device_dst, const void* host_src, size_t bytes) {
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, context_.stream()));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(context_.stream()));
}

void CudaBackend::copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, context_.stream()));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(context_.stream()));
}

void CudaBackend::copy_on_device(void* device_dst, const void* device_src, size_t bytes) {
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice, context_.stream()));
}

void CudaBackend::fill(float* device_data, size_t count, float value) {
  launch_fill(device_data, count, value, context_.stream());
}

void CudaBackend::synchronize() { DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(context_.stream())); }

std::unique_ptr<BatchStager> CudaBackend::make_stager(size_t max_floats, size_t max_labels) {
  return std::make_unique<CudaBatchStager>(context_, max_floats, max_labels);
}

void CudaBackend::convert(const Tensor& from, Tensor& to, Accumulate mode) {
  if (from.num_elements() != to.num_elements()) {
    throw ShapeError("cannot convert " + to_string(from.shape()) + " into " + to_string(to.shape()));
  }
  if (from.device() != DeviceKind::CUDA || to.device() != DeviceKind::CUDA) {
    throw UsageError("the cuda backend converts device tensors only");
  }
  launch_convert(from.raw(), from.dtype(), to.raw(), to.dtype(), from.num_elements(), mode,
                 context_.stream());
}

void CudaBackend::axpy(float alpha, const float* x, float* y, size_t n) {
  launch_axpy(alpha, x, y, n, context_.stream());
}

void CudaBackend::copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t row_floats,
                            size_t rows) {
  if (rows == 0 || row_floats == 0) return;
  DPTRAIN_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float),
                                       row_floats * sizeof(float), rows, cudaMemcpyDeviceToDevice, context_.stream()));
}

void CudaBackend::scale(float* x, size_t n, float alpha) { launch_scale(x, n, alpha, context_.stream()); }

double CudaBackend::sum_squares(const float* x, size_t n) { return launch_sum_squares(x, n, context_.stream()); }

void CudaBackend::clip_to_norm(float* x, const std::vector<ElementSpan>& spans, double max_norm, double* norm) {
  // Made at the first call; the spans are the same every step.
  auto* scratch = static_cast<double*>(clip_scratch_.reserve(clip_scratch_doubles(spans.size()) * sizeof(double)));
  launch_clip_to_norm(x, spans, max_norm, norm, scratch, context_.stream());
}

void CudaBackend::sgd_update(const SgdUpdate& update) { launch_sgd_update(update, context_.stream()); }

void CudaBackend::adam_update(const AdamUpdate& update) { launch_adam_update(update, context_.stream()); }

CudaContext& cuda_context(Backend& backend) {
  if (auto* cuda = dynamic_cast<CudaBackend*>(&backend)) return cuda->context();
  throw DeviceError(std::string("backend '") + backend.name() +
                    "' is not the CUDA backend: CUDA layers and NCCL run with device: cuda only");
}

size_t cuda_device_count(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the error so that later calls do not see it
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
    return 0;
  }
  if (count <= 0 && why) *why = "cudaGetDeviceCount found no device";
  return count > 0 ? static_cast<size_t>(count) : 0;
}

std::unique_ptr<Backend> open_cuda_backend(const BackendRequest& request) {
  std::string why;
  const size_t gpus = cuda_device_count(&why);
  if (gpus == 0) {
    throw UsageError("device 'cuda' was asked for but no CUDA device is visible (" + why +
                     "): set device: auto or cpu, or run on a machine with a GPU");
  }
  return std::make_unique<CudaBackend>(gpu_for_worker(gpus, request.workers_on_node, request.local_rank),
                                       request.precision, request.determinism);
}

}  // namespace dptrain
