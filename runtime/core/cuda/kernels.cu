// Element-wise kernels of the runtime: fill, bf16 casts, gradient clipping, and the optimizer updates over the flat buffers
// (the same formulas, in the same float32 order, as the CPU loops of runtime/train/optimizer.cpp).
#include "runtime/core/cuda/kernels.h"

#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/element_types.cuh"

namespace dptrain {

namespace {

__global__ void fill_kernel(float* data, size_t count, float value) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    data[i] = value;
  }
}

__global__ void float_to_bf16_kernel(const float* src, __nv_bfloat16* dst, size_t count) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

__global__ void bf16_to_float_kernel(const __nv_bfloat16* src, float* dst, size_t count) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    dst[i] = __bfloat162float(src[i]);
  }
}

// dst[i] = src[i] (Overwrite) or dst[i] + src[i] (Add), summed in float32 and rounded once.
template <typename From, typename To, Accumulate mode>
__global__ void convert_kernel(const From* src, To* dst, size_t count) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const float v = widen(src[i]);
    dst[i] = narrow<To>(mode == Accumulate::Add ? widen(dst[i]) + v : v);
  }
}

template <typename From, typename To>
void launch_convert_typed(const void* src, void* dst, size_t count, Accumulate mode, cudaStream_t stream) {
  const auto* s = static_cast<const From*>(src);
  auto* d = static_cast<To*>(dst);
  if (mode == Accumulate::Add) {
    convert_kernel<From, To, Accumulate::Add><<<grid_for(count), kBlockThreads, 0, stream>>>(s, d, count);
  } else {
    convert_kernel<From, To, Accumulate::Overwrite><<<grid_for(count), kBlockThreads, 0, stream>>>(s, d, count);
  }
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

// y += bias per channel over a bf16 NCHW batch of `count` elements.
__global__ void add_channel_bias_bf16_kernel(__nv_bfloat16* y, const float* bias, size_t count, size_t channels,
                                             size_t spatial) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    y[i] = __float2bfloat16_rn(__bfloat162float(y[i]) + bias[(i / spatial) % channels]);
  }
}

// Block c sums channel c of a bf16 NCHW batch (n samples) into sums[c], in float32, in a fixed order.
__global__ void channel_sums_bf16_kernel(const __nv_bfloat16* x, float* sums, size_t n, size_t channels,
                                         size_t spatial) {
  __shared__ float partial[kBlockThreads];
  const size_t c = blockIdx.x, per_channel = n * spatial;
  float sum = 0;
  for (size_t i = threadIdx.x; i < per_channel; i += blockDim.x) {
    const size_t s = i / spatial;
    sum += __bfloat162float(x[(s * channels + c) * spatial + (i - s * spatial)]);
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[c] = partial[0];
}

__global__ void axpy_kernel(float alpha, const float* x, float* y, size_t n) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    y[i] += alpha * x[i];
  }
}

__global__ void scale_kernel(float* x, size_t n, float alpha) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) x[i] *= alpha;
}

// One double partial sum of squares per block, in partials[blockIdx.x].
__global__ void sum_squares_kernel(const float* x, size_t n, double* partials) {
  __shared__ double shared[kBlockThreads];
  double sum = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    sum += static_cast<double>(x[i]) * x[i];
  }
  shared[threadIdx.x] = sum;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

// Blocks of the sum-of-squares kernel: one double partial each.
constexpr unsigned kSumSquaresBlocks = 256;

// *norm = sqrt of the partials added span by span (kSumSquaresBlocks each, in order, then the span
// totals in order: the host loop's order); *coefficient = max_norm / (norm + 1e-6) as a float.
__global__ void norm_kernel(const double* partials, size_t spans, double max_norm, double* norm, float* coefficient) {
  double sum = 0;
  for (size_t s = 0; s < spans; ++s) {
    double span_sum = 0;
    for (unsigned p = 0; p < kSumSquaresBlocks; ++p) span_sum += partials[s * kSumSquaresBlocks + p];
    sum += span_sum;
  }
  const double value = sqrt(sum);
  *norm = value;
  const double c = max_norm / (value + 1e-6);
  *coefficient = c < 1.0 ? static_cast<float>(c) : 1.0f;  // 1 (no scaling) also for a NaN norm
}

// x[i] *= *coefficient when it is below 1 (the clipped case); untouched otherwise.
__global__ void clip_scale_kernel(float* x, size_t n, const float* coefficient) {
  const float c = *coefficient;
  if (!(c < 1.0f)) return;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) x[i] *= c;
}

__global__ void sgd_kernel(SgdUpdate u) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < u.n; i += size_t{gridDim.x} * blockDim.x) {
    const float p = u.params[i];
    const float d = u.grads[i] + u.weight_decay * p;
    if (!u.momentum) {
      u.params[i] = p - u.lr * d;
      continue;
    }
    const float buf = u.mu * u.momentum[i] + d;
    u.momentum[i] = buf;
    u.params[i] = p - u.lr * (u.momentum_kind == MomentumKind::Nesterov ? d + u.mu * buf : buf);
  }
}

__global__ void adam_kernel(AdamUpdate u) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < u.n; i += size_t{gridDim.x} * blockDim.x) {
    const float p = u.params[i];
    const float d = u.grads[i] + u.l2 * p;
    const float m = u.beta1 * u.exp_avg[i] + u.one_minus_beta1 * d;
    const float v = u.beta2 * u.exp_avg_sq[i] + u.one_minus_beta2 * d * d;
    u.exp_avg[i] = m;
    u.exp_avg_sq[i] = v;
    const float denom = sqrtf(v) / u.bias_correction2_sqrt + u.eps;
    u.params[i] = p * u.shrink - u.step_size * (m / denom);
  }
}

}  // namespace

void launch_fill(float* data, size_t count, float value, cudaStream_t stream) {
  if (count == 0) return;
  fill_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(data, count, value);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_float_to_bf16(const float* src, __nv_bfloat16* dst, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  float_to_bf16_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(src, dst, count);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_bf16_to_float(const __nv_bfloat16* src, float* dst, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  bf16_to_float_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(src, dst, count);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_convert(const void* src, DType from, void* dst, DType to, size_t count, Accumulate mode,
                    cudaStream_t stream) {
  if (count == 0) return;
  const bool from16 = from == DType::BFloat16, to16 = to == DType::BFloat16;
  if (from16 && to16) return launch_convert_typed<__nv_bfloat16, __nv_bfloat16>(src, dst, count, mode, stream);
  if (from16) return launch_convert_typed<__nv_bfloat16, float>(src, dst, count, mode, stream);
  if (to16) return launch_convert_typed<float, __nv_bfloat16>(src, dst, count, mode, stream);
  launch_convert_typed<float, float>(src, dst, count, mode, stream);
}

void launch_add_channel_bias_bf16(void* y, const float* bias, size_t n, size_t channels, size_t spatial,
                                  cudaStream_t stream) {
  const size_t count = n * channels * spatial;
  if (count == 0) return;
  add_channel_bias_bf16_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(y), bias,
                                                                              count, channels, spatial);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_channel_sums_bf16(const void* x, float* sums, size_t n, size_t channels, size_t spatial,
                              cudaStream_t stream) {
  if (channels == 0) return;
  channel_sums_bf16_kernel<<<static_cast<unsigned>(channels), kBlockThreads, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(x), sums, n, channels, spatial);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_axpy(float alpha, const float* x, float* y, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n), kBlockThreads, 0, stream>>>(alpha, x, y, n);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_scale(float* x, size_t n, float alpha, cudaStream_t stream) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), kBlockThreads, 0, stream>>>(x, n, alpha);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

double launch_sum_squares(const float* x, size_t n, cudaStream_t stream) {
  if (n == 0) return 0;
  constexpr unsigned kBlocks = kSumSquaresBlocks;
  double* partials = nullptr;
  DPTRAIN_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partials), kBlocks * sizeof(double), stream));
  sum_squares_kernel<<<kBlocks, kBlockThreads, 0, stream>>>(x, n, partials);
  DPTRAIN_CUDA_CHECK_LAUNCH();
  double host[kBlocks];
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(host, partials, sizeof(host), cudaMemcpyDeviceToHost, stream));
  DPTRAIN_CUDA_CHECK(cudaFreeAsync(partials, stream));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  double total = 0;
  for (double p : host) total += p;
  return total;
}

size_t clip_scratch_doubles(size_t spans) { return spans * kSumSquaresBlocks + 1; }

void launch_clip_to_norm(float* x, const std::vector<ElementSpan>& spans, double max_norm, double* norm,
                         double* scratch, cudaStream_t stream) {
  for (size_t s = 0; s < spans.size(); ++s) {
    double* partials = scratch + s * kSumSquaresBlocks;
    const size_t n = spans[s].end - spans[s].begin;
    if (n == 0) {
      DPTRAIN_CUDA_CHECK(cudaMemsetAsync(partials, 0, kSumSquaresBlocks * sizeof(double), stream));
      continue;
    }
    sum_squares_kernel<<<kSumSquaresBlocks, kBlockThreads, 0, stream>>>(x + spans[s].begin, n, partials);
    DPTRAIN_CUDA_CHECK_LAUNCH();
  }
  auto* coefficient = reinterpret_cast<float*>(scratch + spans.size() * kSumSquaresBlocks);
  norm_kernel<<<1, 1, 0, stream>>>(scratch, spans.size(), max_norm, norm, coefficient);
  DPTRAIN_CUDA_CHECK_LAUNCH();
  for (const ElementSpan& span : spans) {
    const size_t n = span.end - span.begin;
    if (n == 0) continue;
    clip_scale_kernel<<<grid_for(n), kBlockThreads, 0, stream>>>(x + span.begin, n, coefficient);
    DPTRAIN_CUDA_CHECK_LAUNCH();
  }
}

void launch_sgd_update(const SgdUpdate& update, cudaStream_t stream) {
  if (update.n == 0) return;
  sgd_kernel<<<grid_for(update.n), kBlockThreads, 0, stream>>>(update);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void launch_adam_update(const AdamUpdate& update, cudaStream_t stream) {
  if (update.n == 0) return;
  adam_kernel<<<grid_for(update.n), kBlockThreads, 0, stream>>>(update);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace dptrain
