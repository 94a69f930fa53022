// Element-wise kernels of the runtime: fill, bf16 casts, and the optimizer updates over the flat buffers
// (the same formulas, in the same float32 order, as the CPU loops of runtime/train/optimizer.cpp).
#include "runtime/core/cuda/kernels.h"

#include "runtime/core/cuda/cuda_check.h"

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
