// Device helpers for kernels written once for float32 and bf16 elements: an element's value as a
// float, and the element nearest a float (bf16: rounded to nearest, ties to even).
#pragma once

#include <cuda_bf16.h>

namespace dptrain {

__device__ inline float widen(float v) { return v; }
__device__ inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ inline T narrow(float v);
template <>
__device__ inline float narrow<float>(float v) { return v; }
template <>
__device__ inline __nv_bfloat16 narrow<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

}  // namespace dptrain
