// Element-wise CUDA kernels of the runtime (fill, bf16 casts and conversions, axpy, scale, sum of squares, optimizer
// updates), launched on `stream`.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "runtime/core/backend.h"

namespace dptrain {

void launch_fill(float* data, size_t count, float value, cudaStream_t stream);
// dst[i] = src[i] rounded to the nearest bf16 (ties to even), for i < count.
void launch_float_to_bf16(const float* src, __nv_bfloat16* dst, size_t count, cudaStream_t stream);
// dst[i] = src[i] widened to float32 (exact), for i < count.
void launch_bf16_to_float(const __nv_bfloat16* src, float* dst, size_t count, cudaStream_t stream);
// Backend::convert: dst[i] = src[i], or dst[i] += src[i] (in float32, rounded once), for i < count,
// between float32 and bf16 in any direction.
void launch_convert(const void* src, DType from, void* dst, DType to, size_t count, Accumulate mode,
                    cudaStream_t stream);
// y += bias[c] on every element of channel c of a bf16 (n, channels, spatial) batch (in float32,
// rounded once): a convolution's bias where its output is bf16.
void launch_add_channel_bias_bf16(void* y, const float* bias, size_t n, size_t channels, size_t spatial,
                                  cudaStream_t stream);
// sums[c] = the sum of channel c of a bf16 (n, channels, spatial) batch, in float32 and a fixed
// order: a convolution's bias gradient where dy is bf16.
void launch_channel_sums_bf16(const void* x, float* sums, size_t n, size_t channels, size_t spatial,
                              cudaStream_t stream);
// y[i] += alpha * x[i] and x[i] *= alpha, for i < n.
void launch_axpy(float alpha, const float* x, float* y, size_t n, cudaStream_t stream);
void launch_scale(float* x, size_t n, float alpha, cudaStream_t stream);
// The sum of x[i]^2 (double per-block partials, added on the host in block order, so the same bits
// every time); waits for `stream`.
double launch_sum_squares(const float* x, size_t n, cudaStream_t stream);
// Doubles of device scratch that launch_clip_to_norm needs for `spans` spans.
size_t clip_scratch_doubles(size_t spans);
// Backend::clip_to_norm on the device, queued: per-span partial sums of squares into `scratch`
// (clip_scratch_doubles), added in span and block order into *norm, then each span scaled by the
// coefficient when it is below 1, read on the device. The host does not wait.
void launch_clip_to_norm(float* x, const std::vector<ElementSpan>& spans, double max_norm, double* norm,
                         double* scratch, cudaStream_t stream);
void launch_sgd_update(const SgdUpdate& update, cudaStream_t stream);
void launch_adam_update(const AdamUpdate& update, cudaStream_t stream);

// Threads per block and blocks for `count` elements with a grid-stride loop.
constexpr unsigned kBlockThreads = 256;
inline unsigned grid_for(size_t count) {
  const size_t blocks = (count + kBlockThreads - 1) / kBlockThreads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

}  // namespace dptrain
