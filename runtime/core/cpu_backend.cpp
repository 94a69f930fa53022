#include "runtime/core/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Below this many parameters one thread does an optimizer update: a thread team would cost more.
constexpr size_t kParallelThreshold = size_t{1} << 15;

// Batches stay where the caller has them: the CPU computes on host memory.
class CpuStager final : public BatchStager {
 public:
  CpuStager(size_t max_floats, size_t max_labels) : max_floats_(max_floats), max_labels_(max_labels) {}

  DeviceBatch upload(const float* inputs, size_t count, const int32_t* labels, size_t n) override {
    if (count > max_floats_ || n > max_labels_) {
      throw ShapeError("batch of " + std::to_string(n) + " samples (" + std::to_string(count) +
                       " floats) exceeds the batch size the model was prepared for, " + std::to_string(max_labels_) +
                       " (" + std::to_string(max_floats_) + " floats)");
    }
    return {inputs, labels};
  }

 private:
  size_t max_floats_, max_labels_;
};

}  // namespace

void* allocate_aligned_host(size_t bytes) {
  void* p = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
  if (!p) throw std::bad_alloc();
  return p;
}

void* CpuBackend::allocate(size_t bytes) { return allocate_aligned_host(bytes); }

void CpuBackend::release(void* data) noexcept { std::free(data); }

void CpuBackend::copy_to_device(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(device_dst, host_src, bytes);
}

void CpuBackend::copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, device_src, bytes);
}

void CpuBackend::copy_on_device(void* device_dst, const void* device_src, size_t bytes) {
  auto* dst = static_cast<char*>(device_dst);
  const auto* src = static_cast<const char*>(device_src);
  const bool overlap = dst < src + bytes && src < dst + bytes;
  if (overlap || bytes <= kParallelThreshold * sizeof(float)) {
    if (bytes) std::memmove(dst, src, bytes);
    return;
  }
  // Large activations (an add's gradient passed on to both inputs): one block per thread.
#pragma omp parallel
  {
    const auto threads = static_cast<size_t>(omp_get_num_threads()), t = static_cast<size_t>(omp_get_thread_num());
    const size_t block = (bytes / threads + 63) / 64 * 64, begin = std::min(bytes, t * block);
    const size_t end = std::min(bytes, begin + block);
    std::memcpy(dst + begin, src + begin, end - begin);
  }
}

void CpuBackend::fill(float* device_data, size_t count, float value) {
  std::fill(device_data, device_data + count, value);
}

void CpuBackend::axpy(float alpha, const float* x, float* y, size_t n) {
#pragma omp parallel for simd if (n > kParallelThreshold) schedule(static)
  for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::add(const float* a, const float* b, float* y, size_t n) {
#pragma omp parallel for simd if (n > kParallelThreshold) schedule(static)
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void CpuBackend::copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t row_floats,
                           size_t rows) {
#pragma omp parallel for schedule(static) if (rows * row_floats > kParallelThreshold)
  for (size_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, row_floats * sizeof(float));
}

void CpuBackend::scale(float* x, size_t n, float alpha) {
#pragma omp parallel for simd if (n > kParallelThreshold) schedule(static)
  for (size_t i = 0; i < n; ++i) x[i] *= alpha;
}

double CpuBackend::sum_squares(const float* x, size_t n) {
  // Fixed blocks summed in parallel, then added in block order: the same bits for any thread count
  // (train.reproducible relies on it for clip_grad_norm).
  constexpr size_t kBlock = 1 << 14;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
  const auto count = static_cast<int64_t>(blocks);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t b = 0; b < count; ++b) {
    const size_t begin = static_cast<size_t>(b) * kBlock, end = std::min(n, begin + kBlock);
    double sum = 0;
    for (size_t i = begin; i < end; ++i) sum += static_cast<double>(x[i]) * x[i];
    partial[static_cast<size_t>(b)] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

std::unique_ptr<BatchStager> CpuBackend::make_stager(size_t max_floats, size_t max_labels) {
  return std::make_unique<CpuStager>(max_floats, max_labels);
}

void CpuBackend::sgd_update(const SgdUpdate& u) {
  const size_t n = u.n;
  float* __restrict p = u.params;
  const float* __restrict g = u.grads;
  const float lr = u.lr, wd = u.weight_decay, mu = u.mu;
  if (!u.momentum) {
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
    for (size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
  } else if (u.momentum_kind == MomentumKind::Classic) {
    // buf = mu * buf + g; p -= lr * buf. The buffer starts at zero, so the first step sets buf = g.
    float* __restrict buf = u.momentum;
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
    for (size_t i = 0; i < n; ++i) {
      const float d = g[i] + wd * p[i];
      buf[i] = mu * buf[i] + d;
      p[i] -= lr * buf[i];
    }
  } else {
    // Nesterov: buf = mu * buf + g; p -= lr * (g + mu * buf).
    float* __restrict buf = u.momentum;
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
    for (size_t i = 0; i < n; ++i) {
      const float d = g[i] + wd * p[i];
      buf[i] = mu * buf[i] + d;
      p[i] -= lr * (d + mu * buf[i]);
    }
  }
}

void CpuBackend::adam_update(const AdamUpdate& u) {
  const size_t n = u.n;
  float* __restrict p = u.params;
  const float* __restrict g = u.grads;
  float* __restrict m = u.exp_avg;
  float* __restrict v = u.exp_avg_sq;
  const float l2 = u.l2, beta1 = u.beta1, beta2 = u.beta2, one_minus_beta1 = u.one_minus_beta1,
              one_minus_beta2 = u.one_minus_beta2, eps = u.eps, shrink = u.shrink, step_size = u.step_size,
              bias_correction2_sqrt = u.bias_correction2_sqrt;
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
  for (size_t i = 0; i < n; ++i) {
    const float d = g[i] + l2 * p[i];
    const float mi = beta1 * m[i] + one_minus_beta1 * d;
    const float vi = beta2 * v[i] + one_minus_beta2 * d * d;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
    p[i] = p[i] * shrink - step_size * (mi / denom);
  }
}

size_t cpu_device_count(std::string*) { return 1; }

std::unique_ptr<Backend> open_cpu_backend(const BackendRequest& request) {
  if (request.precision == Precision::Bf16) {
    throw UsageError("precision bf16 runs on the GPU only: set precision: float32 for device cpu");
  }
  return std::make_unique<CpuBackend>(request.cpu_convolution);
}

}  // namespace dptrain
