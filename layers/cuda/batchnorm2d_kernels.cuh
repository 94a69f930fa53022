// The kernels of the CUDA batchnorm2d (layers/cuda/batchnorm2d.cu): per-channel sums in double over
// a fixed grid of partials, the moments and gradient means made from them (on this worker's batch
// alone, or from the vectors of sums over workers, BatchStatsLayout), and the element-wise kernels.
#pragma once

#include <algorithm>
#include <cstddef>

#include "layers/batchnorm2d.h"
#include "runtime/core/cuda/element_types.cuh"
#include "runtime/core/cuda/kernels.h"

namespace dptrain::batchnorm2d_kernels {

// What the per-channel reduction sums: (x, x^2), or (dy, dy * x_hat) with x_hat from mean, inv_std.
enum class ChannelSums { Moments, Gradients };

// The elements of channel c of an NCHW batch: `per_channel` = N * spatial of them, element i being
// sample i / spatial, position i % spatial.
struct ChannelLayout {
  size_t channels, spatial, per_channel;
  __device__ size_t at(size_t c, size_t i) const {
    const size_t s = i / spatial;
    return (s * channels + c) * spatial + (i - s * spatial);
  }
};

// Block (c, p) of a (C, P) grid sums its share of channel c into partials[(k * C + c) * P + p],
// k = 0 for the first sum and 1 for the second, in double.
// Moments: a = x (sum x, sum x^2). Gradients: a = dy, b = x (sum dy, sum dy * (x - mean) * inv_std).
// T: the activations' type (float32 or bf16); sums in double either way.
template <ChannelSums kind, typename T>
__global__ void channel_sums_kernel(const T* a, const T* b, const float* mean, const float* inv_std,
                                    ChannelLayout layout, double* partials) {
  __shared__ double first[kBlockThreads], second[kBlockThreads];
  const size_t c = blockIdx.x, parts = gridDim.y;
  double s0 = 0, s1 = 0;
  for (size_t i = blockIdx.y * size_t{blockDim.x} + threadIdx.x; i < layout.per_channel; i += parts * blockDim.x) {
    const size_t at = layout.at(c, i);
    const float v = widen(a[at]);
    s0 += v;
    if constexpr (kind == ChannelSums::Moments) {
      s1 += static_cast<double>(v) * v;
    } else {
      const float x_hat = (widen(b[at]) - mean[c]) * inv_std[c];
      s1 += static_cast<double>(v) * x_hat;
    }
  }
  first[threadIdx.x] = s0;
  second[threadIdx.x] = s1;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      first[threadIdx.x] += first[threadIdx.x + half];
      second[threadIdx.x] += second[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partials[c * parts + blockIdx.y] = first[0];
    partials[(layout.channels + c) * parts + blockIdx.y] = second[0];
  }
}

// y = x * scale + shift with scale = weight * inv_std and shift = bias - mean * scale, per channel
// (weight and bias null without affine), as the CPU layer computes them.
template <typename T>
__global__ void normalize_kernel(const T* x, T* y, size_t count, size_t channels, size_t spatial,
                                 const float* mean, const float* inv_std, const float* weight, const float* bias) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const size_t c = (i / spatial) % channels;
    const float scale = (weight ? weight[c] : 1.0f) * inv_std[c];
    const float shift = (bias ? bias[c] : 0.0f) - mean[c] * scale;
    y[i] = narrow<T>(widen(x[i]) * scale + shift);
  }
}

// dx = weight * inv_std * (dy - mean_dy - x_hat * mean_dy_xhat), per channel, with global means.
template <typename T>
__global__ void input_gradient_kernel(const T* x, const T* dy, T* dx, size_t count, size_t channels,
                                      size_t spatial, const float* mean, const float* inv_std, const float* weight,
                                      const float* mean_dy, const float* mean_dy_xhat) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const size_t c = (i / spatial) % channels;
    const float scale = (weight ? weight[c] : 1.0f) * inv_std[c];
    const float x_hat = (widen(x[i]) - mean[c]) * inv_std[c];
    dx[i] = narrow<T>(scale * (widen(dy[i]) - mean_dy[c] - x_hat * mean_dy_xhat[c]));
  }
}

// running = (1 - m) * running + m * batch, for the mean and the unbiased variance of each channel.
__global__ void running_update_kernel(float* running_mean, float* running_var, const float* batch_mean,
                                      const float* batch_var, size_t channels, float momentum) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += size_t{gridDim.x} * blockDim.x) {
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * batch_mean[c];
    running_var[c] = (1 - momentum) * running_var[c] + momentum * batch_var[c];
  }
}

// inv_std[c] = 1 / sqrt(var[c] + eps), computed in double as the CPU layer does.
__global__ void inv_std_kernel(const float* var, float* inv_std, size_t channels, double eps) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += size_t{gridDim.x} * blockDim.x) {
    inv_std[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(var[c]) + eps));
  }
}

// The sum of channel c's `parts` partials of sum k (0: first, 1: second), in order.
__device__ inline double add_partials(const double* partials, size_t channels, unsigned parts, size_t k, size_t c) {
  double sum = 0;
  for (unsigned p = 0; p < parts; ++p) sum += partials[(k * channels + c) * parts + p];
  return sum;
}

// Where forward's moments go: the batch's mean, 1/std and unbiased variance (C each), and the
// running statistics they update.
struct MomentsOut {
  float *mean, *inv_std, *unbiased_var, *running_mean, *running_var;
};

// Channel c's moments from its sum and sum of squares over `count` values, as the CPU layer's
// moments_from_sums (no fused multiply-add, for its bits), and its running statistics.
__device__ inline void write_moments(size_t c, double sum, double squares, double count, double eps, float momentum,
                              const MomentsOut& out) {
  const double m = sum / count;
  const double var = fmax(0.0, __dsub_rn(squares / count, __dmul_rn(m, m)));
  out.mean[c] = static_cast<float>(m);
  out.inv_std[c] = static_cast<float>(1.0 / sqrt(var + eps));
  out.unbiased_var[c] = static_cast<float>(count > 1 ? __dmul_rn(var, count) / (count - 1) : var);
  out.running_mean[c] = (1 - momentum) * out.running_mean[c] + momentum * out.mean[c];
  out.running_var[c] = (1 - momentum) * out.running_var[c] + momentum * out.unbiased_var[c];
}

// Forward's moments from the partials of (x, x^2) over `count` values per channel (this worker's
// batch is the whole batch).
__global__ void moments_kernel(const double* partials, size_t channels, unsigned parts, double count, double eps,
                               float momentum, MomentsOut out) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += size_t{gridDim.x} * blockDim.x) {
    write_moments(c, add_partials(partials, channels, parts, 0, c), add_partials(partials, channels, parts, 1, c),
                  count, eps, momentum, out);
  }
}

// Forward's vector of sums (BatchStatsLayout) from this worker's partials of (x, x^2) and its
// `count` values per channel, for the sum over workers.
__global__ void gather_moment_sums_kernel(const double* partials, BatchStatsLayout layout, unsigned parts,
                                          double count, double* sums) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < layout.channels; c += size_t{gridDim.x} * blockDim.x) {
    sums[layout.first(c)] = add_partials(partials, layout.channels, parts, 0, c);
    sums[layout.second(c)] = add_partials(partials, layout.channels, parts, 1, c);
    if (c == 0) sums[layout.count()] = count;
  }
}

// Forward's moments from the vector of sums over every worker (BatchStatsLayout). A count below one
// (no worker had a value: not a training step the trainer makes) normalises as one value would,
// where the host path stops with a ShapeError.
__global__ void moments_from_sums_kernel(const double* sums, BatchStatsLayout layout, double eps, float momentum,
                                         MomentsOut out) {
  const double count = fmax(1.0, sums[layout.count()]);
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < layout.channels; c += size_t{gridDim.x} * blockDim.x) {
    write_moments(c, sums[layout.first(c)], sums[layout.second(c)], count, eps, momentum, out);
  }
}

// Backward's per-channel results from the partials of (dy, dy * x_hat) over `count` values: the
// weight and bias gradients (both null without affine) and the means of dy and of dy * x_hat.
__global__ void gradient_means_kernel(const double* partials, size_t channels, unsigned parts, double count,
                                      float* weight_grad, float* bias_grad, float* mean_dy, float* mean_dy_xhat) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += size_t{gridDim.x} * blockDim.x) {
    const double dy = add_partials(partials, channels, parts, 0, c);
    const double dy_xhat = add_partials(partials, channels, parts, 1, c);
    if (weight_grad) weight_grad[c] = static_cast<float>(dy_xhat);
    if (bias_grad) bias_grad[c] = static_cast<float>(dy);
    mean_dy[c] = static_cast<float>(dy / count);
    mean_dy_xhat[c] = static_cast<float>(dy_xhat / count);
  }
}

// Backward's vector of sums (BatchStatsLayout) from this worker's partials of (dy, dy * x_hat), for
// the sum over workers, and this worker's weight and bias gradients (both null without affine):
// the gradient all-reduce adds those up.
__global__ void gather_gradient_sums_kernel(const double* partials, BatchStatsLayout layout, unsigned parts,
                                            double* sums, float* weight_grad, float* bias_grad) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < layout.channels; c += size_t{gridDim.x} * blockDim.x) {
    const double dy = add_partials(partials, layout.channels, parts, 0, c);
    const double dy_xhat = add_partials(partials, layout.channels, parts, 1, c);
    sums[layout.first(c)] = dy;
    sums[layout.second(c)] = dy_xhat;
    if (weight_grad) weight_grad[c] = static_cast<float>(dy_xhat);
    if (bias_grad) bias_grad[c] = static_cast<float>(dy);
  }
}

// Backward's means of dy and of dy * x_hat from the vector of sums over every worker, divided by
// forward's count of values per channel over every worker (`moment_sums`, BatchStatsLayout).
__global__ void gradient_means_from_sums_kernel(const double* sums, const double* moment_sums,
                                                BatchStatsLayout layout, float* mean_dy, float* mean_dy_xhat) {
  const double count = fmax(1.0, moment_sums[layout.count()]);
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < layout.channels; c += size_t{gridDim.x} * blockDim.x) {
    mean_dy[c] = static_cast<float>(sums[layout.first(c)] / count);
    mean_dy_xhat[c] = static_cast<float>(sums[layout.second(c)] / count);
  }
}

// Blocks per channel of the reduction: enough to fill the GPU when there are few channels, and
// at least a few elements per thread.
inline unsigned partials_per_channel(size_t channels, size_t per_channel) {
  constexpr size_t kTargetBlocks = 1024, kElementsPerThread = 4;
  const size_t wanted = (per_channel + kBlockThreads * kElementsPerThread - 1) / (kBlockThreads * kElementsPerThread);
  const size_t most = std::max<size_t>(1, kTargetBlocks / channels);
  return static_cast<unsigned>(std::clamp<size_t>(wanted, 1, most));
}

}  // namespace dptrain::batchnorm2d_kernels
