// OperandBuffer: device scratch holding one operand of a cuDNN or cuBLAS call in the element type the
// call computes in, when the tensor it stands for has another type (a float32 tensor read by a bf16
// convolution, a bf16 activation read by a float32 fallback).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "runtime/core/cuda/cuda_context.h"
#include "runtime/core/cuda/kernels.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// A growing device buffer, owned by one layer and reused by every call. Conversions run on the
// given stream, so they are ordered with the library calls that read or write the buffer.
class OperandBuffer {
 public:
  // `t`'s elements in `type`: t's own memory when it has that type, else a copy converted here.
  const void* read(const Tensor& t, DType type, cudaStream_t stream) {
    if (t.dtype() == type) return t.raw();
    void* out = buffer_.reserve(t.num_elements() * element_size(type));
    launch_convert(t.raw(), t.dtype(), out, type, t.num_elements(), Accumulate::Overwrite, stream);
    return out;
  }
  // Where a result in `type` for `t` is written: t's own memory when it has that type, else here,
  // and finish() converts it into t.
  void* write(Tensor& t, DType type) {
    return t.dtype() == type ? t.raw() : buffer_.reserve(t.num_elements() * element_size(type));
  }
  // Converts a result that write() placed here into t (nothing when it was t's own memory).
  void finish(Tensor& t, DType type, cudaStream_t stream) const {
    if (t.dtype() != type) {
      launch_convert(buffer_.get(), type, t.raw(), t.dtype(), t.num_elements(), Accumulate::Overwrite, stream);
    }
  }

 private:
  DeviceBuffer buffer_;
};

}  // namespace dptrain
