// Bf16Buffer: device scratch holding bf16 copies of float32 data, for layers that compute in bf16
// while their parameters, gradients and activations stay float32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "runtime/core/cuda/cuda_context.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

// A growing bf16 device buffer, owned by one layer and reused by every call. Casts run on the
// given stream, so they are ordered with the library calls that read or write the buffer.
class Bf16Buffer {
 public:
  // Room for `count` values; earlier contents are lost when it grows.
  __nv_bfloat16* reserve(size_t count) {
    return static_cast<__nv_bfloat16*>(buffer_.reserve(count * sizeof(__nv_bfloat16)));
  }
  // Fills the buffer with `src` (count floats) rounded to bf16 and returns it.
  const __nv_bfloat16* cast_from(const float* src, size_t count, cudaStream_t stream) {
    __nv_bfloat16* data = reserve(count);
    launch_float_to_bf16(src, data, count, stream);
    return data;
  }
  // Writes the buffer's first `count` values, widened to float32, to `dst`.
  void cast_to(float* dst, size_t count, cudaStream_t stream) const {
    launch_bf16_to_float(static_cast<const __nv_bfloat16*>(buffer_.get()), dst, count, stream);
  }

 private:
  DeviceBuffer buffer_;
};

}  // namespace dptrain
