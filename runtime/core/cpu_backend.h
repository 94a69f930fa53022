// CpuBackend: the Backend of host memory, where the CPU layers and optimizer loops compute.
#pragma once

#include <memory>
#include <string>

#include "runtime/core/backend.h"
#include "runtime/core/cpu_convolution.h"
#include "runtime/core/backend_registry.h"

namespace dptrain {

// 64-byte aligned host memory of at least `bytes` (rounded up to 64, at least 64); std::bad_alloc
// when there is none. Release it with std::free. What CpuBackend and host tensors allocate.
void* allocate_aligned_host(size_t bytes);

// Host memory (64-byte aligned), copies with memcpy, optimizer updates as OpenMP loops over the
// flat buffers, batches used where they are. Computes in float32 whatever precision was asked for
// (tf32 does not exist on the CPU). Holds no state: any number may exist at a time.
class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(CpuConvolution convolution = CpuConvolution::Auto) : convolution_(convolution) {}

  const char* name() const override { return "cpu"; }
  DeviceKind device() const override { return DeviceKind::CPU; }
  std::string describe() const override { return "cpu"; }
  Precision precision() const override { return Precision::Float32; }

  void* allocate(size_t bytes) override;
  void release(void* data) noexcept override;
  void* allocate_pinned(size_t bytes) override { return allocate(bytes); }
  void release_pinned(void* data) noexcept override { release(data); }

  void copy_to_device(void* device_dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void copy_on_device(void* device_dst, const void* device_src, size_t bytes) override;
  void fill(float* device_data, size_t count, float value) override;
  void synchronize() override {}

  std::unique_ptr<BatchStager> make_stager(size_t max_floats, size_t max_labels) override;

  void axpy(float alpha, const float* x, float* y, size_t n) override;
  void add(const float* a, const float* b, float* y, size_t n) override;
  void copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t row_floats,
                 size_t rows) override;
  void scale(float* x, size_t n, float alpha) override;
  double sum_squares(const float* x, size_t n) override;

  void sgd_update(const SgdUpdate& update) override;
  void adam_update(const AdamUpdate& update) override;

  // The kernels its conv2d layers train with.
  CpuConvolution convolution() const { return convolution_; }

 private:
  CpuConvolution convolution_;
};

// 1: the CPU is always there.
size_t cpu_device_count(std::string* why);

// A CpuBackend; UsageError for precision bf16, which exists on the GPU only.
std::unique_ptr<Backend> open_cpu_backend(const BackendRequest& request);

}  // namespace dptrain
