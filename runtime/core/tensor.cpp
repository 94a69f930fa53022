#include "runtime/core/tensor.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "runtime/core/backend.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"

namespace dptrain {

size_t num_elements(const Shape& shape) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '(';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ')';
  return out.str();
}

Shape batch_shape(size_t n, const Shape& per_sample) {
  Shape out{n};
  out.insert(out.end(), per_sample.begin(), per_sample.end());
  return out;
}

const char* to_string(DeviceKind device) { return device == DeviceKind::CPU ? "cpu" : "cuda"; }

const char* to_string(DType dtype) { return dtype == DType::BFloat16 ? "bf16" : "float32"; }

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), num_elements_(dptrain::num_elements(shape_)) {
  void* p = allocate_aligned_host(num_elements_ * sizeof(float));
  storage_.reset(p, [](void* q) { std::free(q); });
  data_ = storage_.get();
  std::fill(static_cast<float*>(data_), static_cast<float*>(data_) + num_elements_, 0.0f);
}

Tensor::Tensor(Shape shape, Backend& backend, DType dtype)
    : shape_(std::move(shape)),
      num_elements_(dptrain::num_elements(shape_)),
      dtype_(dtype),
      device_(backend.device()),
      backend_(&backend) {
  // Whole floats, so that zero-filling as floats covers every element of any type.
  const size_t floats = (num_elements_ * element_size(dtype_) + sizeof(float) - 1) / sizeof(float);
  void* p = backend.allocate(std::max<size_t>(64, floats * sizeof(float)));
  storage_.reset(p, [&backend](void* q) { backend.release(q); });
  data_ = storage_.get();
  backend.fill(static_cast<float*>(data_), floats, 0.0f);
}

Tensor Tensor::pinned(Shape shape, Backend& backend) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.num_elements_ = dptrain::num_elements(t.shape_);
  void* p = backend.allocate_pinned(std::max<size_t>(64, t.num_elements_ * sizeof(float)));
  t.storage_.reset(p, [&backend](void* q) { backend.release_pinned(q); });
  t.data_ = t.storage_.get();
  std::fill(static_cast<float*>(t.data_), static_cast<float*>(t.data_) + t.num_elements_, 0.0f);
  return t;
}

void Tensor::not_float32() const {
  throw UsageError(std::string("a ") + to_string(dtype_) + " tensor of shape " + to_string(shape_) +
                   " read as float32 (data() is for float32 tensors; raw() reaches any type)");
}

Tensor Tensor::view(void* data, Shape shape, DType dtype, Backend& backend) {
  Tensor t = view(static_cast<float*>(data), std::move(shape), backend);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::view(float* data, Shape shape) {
  Tensor t;
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.num_elements_ = dptrain::num_elements(t.shape_);
  return t;
}

Tensor Tensor::view(float* data, Shape shape, Backend& backend) {
  Tensor t = view(data, std::move(shape));
  t.device_ = backend.device();
  t.backend_ = &backend;
  return t;
}

size_t Tensor::dim(size_t i) const {
  if (i >= shape_.size()) {
    throw ShapeError("tensor of shape " + to_string(shape_) + " has no dimension " + std::to_string(i));
  }
  return shape_[i];
}

Tensor Tensor::reshaped(Shape shape) const {
  if (dptrain::num_elements(shape) != num_elements_) {
    throw ShapeError("cannot reshape " + to_string(shape_) + " to " + to_string(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::leading(size_t n) const {
  if (shape_.empty() || n > shape_[0]) {
    throw ShapeError("cannot take " + std::to_string(n) + " leading entries of " + to_string(shape_));
  }
  Tensor t = *this;
  t.shape_[0] = n;
  t.num_elements_ = dptrain::num_elements(t.shape_);
  return t;
}

void Tensor::fill(float value) {
  if (dtype_ != DType::Float32) {
    if (value != 0.0f) throw UsageError(std::string("a ") + to_string(dtype_) + " tensor can only be zero-filled");
    // bf16 zero is all zero bits: as many float zeros as cover the elements.
    const size_t whole = size_bytes() / sizeof(float), rest = size_bytes() % sizeof(float);
    if (backend_) {
      if (whole > 0) backend_->fill(static_cast<float*>(data_), whole, 0.0f);
      if (rest > 0) {
        const uint16_t zero = 0;
        backend_->copy_to_device(static_cast<char*>(data_) + whole * sizeof(float), &zero, rest);
      }
    } else {
      std::memset(data_, 0, size_bytes());
    }
    return;
  }
  if (backend_) {
    backend_->fill(static_cast<float*>(data_), num_elements_, value);
  } else {
    std::fill(static_cast<float*>(data_), static_cast<float*>(data_) + num_elements_, value);
  }
}

Tensor Tensor::to(Backend& backend) const {
  Tensor t(shape_, backend, dtype_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to_host() const {
  if (dtype_ != DType::Float32) {
    throw UsageError(std::string("a ") + to_string(dtype_) + " tensor is copied to the host through a float32 one");
  }
  Tensor t(shape_);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& from) {
  if (from.num_elements() != num_elements_) {
    throw ShapeError("cannot copy a tensor of shape " + to_string(from.shape()) + " into one of shape " +
                     to_string(shape_));
  }
  if (from.dtype_ != dtype_) {
    throw UsageError(std::string("cannot copy a ") + to_string(from.dtype_) + " tensor into a " + to_string(dtype_) +
                     " one (Backend::convert converts)");
  }
  const size_t bytes = size_bytes();
  if (bytes == 0 || from.raw() == data_) return;
  // Device memory always has its backend (see the constructors and view).
  if (device_ == DeviceKind::CPU && from.device_ == DeviceKind::CPU) {
    std::memcpy(data_, from.raw(), bytes);
  } else if (device_ == DeviceKind::CPU) {
    from.backend_->copy_to_host(data_, from.raw(), bytes);
  } else if (from.device_ == DeviceKind::CPU) {
    backend_->copy_to_device(data_, from.raw(), bytes);
  } else {
    backend_->copy_on_device(data_, from.raw(), bytes);
  }
}

}  // namespace dptrain
