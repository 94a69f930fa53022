// Tensor: a shaped buffer of float32 (or bf16) values on one device, either owning its memory or
// viewing another's.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace dptrain {

// Dimensions, outermost first; a batch of images is (N, C, H, W).
using Shape = std::vector<size_t>;

size_t num_elements(const Shape& shape);
std::string to_string(const Shape& shape);
// (n, ...per_sample): the shape of a batch of n samples.
Shape batch_shape(size_t n, const Shape& per_sample);

// Element type of a tensor: float32 (everything on the CPU, parameters, gradients and optimizer
// state everywhere), or bf16 (activations between layers that compute in bf16 on a GPU: 8 bits of
// mantissa, float32's exponent range).
enum class DType { Float32, BFloat16 };

// Bytes per element of `dtype`.
inline size_t element_size(DType dtype) { return dtype == DType::BFloat16 ? 2 : 4; }
// "float32" or "bf16".
const char* to_string(DType dtype);

// Where a tensor's memory lives.
enum class DeviceKind { CPU, CUDA };

const char* to_string(DeviceKind device);

class Backend;

// A dense, contiguous, row-major tensor. Copies share memory (like a shared_ptr); views created
// with `view` do not own what they point to and must not outlive it. Memory of a backend (device
// memory, or host memory the CPU backend allocated) is reached through that backend, which the
// tensor must not outlive. data() is for float32 tensors (UsageError otherwise); raw() reaches
// any type's elements.
class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-filled, 64-byte aligned host memory for `shape`.
  explicit Tensor(Shape shape);
  // Allocates zero-filled memory for `shape` of `dtype` through `backend` (on backend.device()).
  Tensor(Shape shape, Backend& backend, DType dtype = DType::Float32);
  // Zero-filled host memory from backend.allocate_pinned: page-locked where the backend is a GPU,
  // so that copies to and from it overlap computation.
  static Tensor pinned(Shape shape, Backend& backend);
  // A non-owning view of host memory at `data` with `shape`.
  static Tensor view(float* data, Shape shape);
  // A non-owning view of `backend`'s memory at `data` with `shape`.
  static Tensor view(float* data, Shape shape, Backend& backend);
  // A non-owning view of `backend`'s memory at `data`: `shape` elements of `dtype`.
  static Tensor view(void* data, Shape shape, DType dtype, Backend& backend);

  float* data() {
    if (dtype_ != DType::Float32) not_float32();
    return static_cast<float*>(data_);
  }
  const float* data() const {
    if (dtype_ != DType::Float32) not_float32();
    return static_cast<const float*>(data_);
  }
  void* raw() { return data_; }
  const void* raw() const { return data_; }
  const Shape& shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  size_t dim(size_t i) const;
  size_t num_elements() const { return num_elements_; }
  size_t size_bytes() const { return num_elements_ * element_size(dtype_); }
  DType dtype() const { return dtype_; }
  DeviceKind device() const { return device_; }
  // The backend whose memory this is; null for host memory of no backend.
  Backend* backend() const { return backend_; }
  bool empty() const { return data_ == nullptr; }

  // A view of the same memory with another shape of the same element count.
  Tensor reshaped(Shape shape) const;
  // A view of the first `n` entries along dimension 0.
  Tensor leading(size_t n) const;

  // Every element = value (float32 tensors; a bf16 tensor takes only 0).
  void fill(float value);
  void zero() { fill(0.0f); }

  // A new tensor in `backend`'s memory holding a copy of this one.
  Tensor to(Backend& backend) const;
  // A new host tensor holding a copy of this one.
  Tensor to_host() const;
  // Copies `from` (same element count and type, any device) into this tensor's memory, through the
  // backend of whichever side is device memory. Between types: Backend::convert.
  void copy_from(const Tensor& from);

 private:
  [[noreturn]] void not_float32() const;

  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  Shape shape_;
  size_t num_elements_ = 0;
  DType dtype_ = DType::Float32;
  DeviceKind device_ = DeviceKind::CPU;
  Backend* backend_ = nullptr;
};

}  // namespace dptrain
