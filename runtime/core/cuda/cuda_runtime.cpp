// DeviceRuntime over the CUDA runtime API: memory, copies and kernels on the bound context's stream.
#include "runtime/core/cuda/cuda_runtime.h"

#include "runtime/core/cuda/batch_stager.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/cuda_context.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// The compute stream of the bound context; the legacy default stream before one is bound.
cudaStream_t compute_stream() {
  CudaContext* context = CudaContext::current_or_null();
  return context ? context->stream() : nullptr;
}

// CUDA behind DeviceRuntime. Host-involving copies return once the host memory may be reused.
class CudaRuntime final : public DeviceRuntime {
 public:
  const char* name() const override { return "cuda"; }

  size_t device_count(std::string* why) const override {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error so later calls do not see it
      if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
      return 0;
    }
    if (count <= 0 && why) *why = "cudaGetDeviceCount found no device";
    return count > 0 ? static_cast<size_t>(count) : 0;
  }

  std::unique_ptr<BoundDevice> open(size_t ordinal, Precision precision) override {
    return std::make_unique<CudaContext>(ordinal, precision);
  }

  void* allocate(size_t bytes) override {
    void* p = nullptr;
    DPTRAIN_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
  void release(void* data) noexcept override {
    if (!data) return;
    // Queued kernels may still use the memory; cudaFree waits for the device.
    cudaFree(data);
  }
  void* allocate_pinned(size_t bytes) override {
    void* p = nullptr;
    DPTRAIN_CUDA_CHECK(cudaMallocHost(&p, bytes));
    return p;
  }
  void release_pinned(void* data) noexcept override {
    if (data) cudaFreeHost(data);
  }

  void copy_to_device(void* device_dst, const void* host_src, size_t bytes) override {
    copy(device_dst, host_src, bytes, cudaMemcpyHostToDevice);
  }
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) override {
    copy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost);
  }
  void copy_on_device(void* device_dst, const void* device_src, size_t bytes) override {
    DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice, compute_stream()));
  }
  void fill(float* device_data, size_t count, float value) override {
    launch_fill(device_data, count, value, compute_stream());
  }
  void synchronize() override { DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(compute_stream())); }

  std::unique_ptr<BatchStager> make_stager(size_t max_floats, size_t max_labels) override {
    return std::make_unique<CudaBatchStager>(CudaContext::current(), max_floats, max_labels);
  }

  void sgd_update(const SgdUpdate& update) override { launch_sgd_update(update, compute_stream()); }
  void adam_update(const AdamUpdate& update) override { launch_adam_update(update, compute_stream()); }

 private:
  static void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    cudaStream_t stream = compute_stream();
    DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream));
    DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
};

}  // namespace

DeviceRuntime& cuda_device_runtime() {
  static CudaRuntime runtime;
  return runtime;
}

}  // namespace dptrain
