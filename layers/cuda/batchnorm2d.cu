// CUDA batchnorm2d: per-channel sums reduced in double on the device (a fixed grid of partials per
// channel, added in order, so the same bits every time). With the batch on this worker alone the
// partials are added and turned into moments and gradients on the device, without the host; when
// the statistics are summed over workers they are added on the host and summed there as the CPU
// layer does. Element-wise kernels for normalisation, running statistics and dx.
#include "layers/batchnorm2d.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

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
template <ChannelSums kind>
__global__ void channel_sums_kernel(const float* a, const float* b, const float* mean, const float* inv_std,
                                    ChannelLayout layout, double* partials) {
  __shared__ double first[kBlockThreads], second[kBlockThreads];
  const size_t c = blockIdx.x, parts = gridDim.y;
  double s0 = 0, s1 = 0;
  for (size_t i = blockIdx.y * size_t{blockDim.x} + threadIdx.x; i < layout.per_channel; i += parts * blockDim.x) {
    const size_t at = layout.at(c, i);
    const float v = a[at];
    s0 += v;
    if constexpr (kind == ChannelSums::Moments) {
      s1 += static_cast<double>(v) * v;
    } else {
      const float x_hat = (b[at] - mean[c]) * inv_std[c];
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
__global__ void normalize_kernel(const float* x, float* y, size_t count, size_t channels, size_t spatial,
                                 const float* mean, const float* inv_std, const float* weight, const float* bias) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const size_t c = (i / spatial) % channels;
    const float scale = (weight ? weight[c] : 1.0f) * inv_std[c];
    const float shift = (bias ? bias[c] : 0.0f) - mean[c] * scale;
    y[i] = x[i] * scale + shift;
  }
}

// dx = weight * inv_std * (dy - mean_dy - x_hat * mean_dy_xhat), per channel, with global means.
__global__ void input_gradient_kernel(const float* x, const float* dy, float* dx, size_t count, size_t channels,
                                      size_t spatial, const float* mean, const float* inv_std, const float* weight,
                                      const float* mean_dy, const float* mean_dy_xhat) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const size_t c = (i / spatial) % channels;
    const float scale = (weight ? weight[c] : 1.0f) * inv_std[c];
    const float x_hat = (x[i] - mean[c]) * inv_std[c];
    dx[i] = scale * (dy[i] - mean_dy[c] - x_hat * mean_dy_xhat[c]);
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
__device__ double add_partials(const double* partials, size_t channels, unsigned parts, size_t k, size_t c) {
  double sum = 0;
  for (unsigned p = 0; p < parts; ++p) sum += partials[(k * channels + c) * parts + p];
  return sum;
}

// Forward's moments from the partials of (x, x^2) over `count` values per channel, as the CPU
// layer's moments_from_sums (no fused multiply-add, for its bits), and the running statistics.
__global__ void moments_kernel(const double* partials, size_t channels, unsigned parts, double count, double eps,
                               float momentum, float* mean, float* inv_std, float* unbiased_var, float* running_mean,
                               float* running_var) {
  for (size_t c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += size_t{gridDim.x} * blockDim.x) {
    const double m = add_partials(partials, channels, parts, 0, c) / count;
    const double var = fmax(0.0, __dsub_rn(add_partials(partials, channels, parts, 1, c) / count, __dmul_rn(m, m)));
    mean[c] = static_cast<float>(m);
    inv_std[c] = static_cast<float>(1.0 / sqrt(var + eps));
    unbiased_var[c] = static_cast<float>(count > 1 ? __dmul_rn(var, count) / (count - 1) : var);
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1 - momentum) * running_var[c] + momentum * unbiased_var[c];
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

// Blocks per channel of the reduction: enough to fill the GPU when there are few channels, and
// at least a few elements per thread.
unsigned partials_per_channel(size_t channels, size_t per_channel) {
  constexpr size_t kTargetBlocks = 1024, kElementsPerThread = 4;
  const size_t wanted = (per_channel + kBlockThreads * kElementsPerThread - 1) / (kBlockThreads * kElementsPerThread);
  const size_t most = std::max<size_t>(1, kTargetBlocks / channels);
  return static_cast<unsigned>(std::clamp<size_t>(wanted, 1, most));
}

// batchnorm2d on the GPU. Forward keeps the batch mean and 1/std on the device (and the count on the
// host) for backward; the running statistics are device buffers, updated on the device.
class CudaBatchNorm2d final : public BatchNorm2dLayer {
 public:
  CudaBatchNorm2d(const BatchNorm2dOptions& options, const Shape& input_shape, CudaContext& cuda)
      : BatchNorm2dLayer(options, input_shape), cuda_(cuda) {}

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  // Slots of channel_ (each C floats): the last training batch's mean, 1/std and unbiased variance,
  // evaluation's 1/std, and backward's global mean of dy and of dy * x_hat.
  enum Slot : size_t { kMean, kInvStd, kUnbiasedVar, kEvalInvStd, kMeanDy, kMeanDyXhat, kSlots };
  float* slot(Slot s) {
    return static_cast<float*>(channel_.reserve(kSlots * channels_ * sizeof(float))) + s * channels_;
  }

  // Queues the per-channel partials of [first sum (C), second sum (C)] over `n` samples into
  // partials_ and returns how many per channel; `mean` and `inv_std` (device) only for Gradients.
  template <ChannelSums kind>
  unsigned launch_channel_sums(const float* a, const float* b, size_t n, const float* mean, const float* inv_std);
  // The sums of the `parts` partials per channel, read back to the host (waits for the stream).
  std::vector<double> read_channel_sums(unsigned parts);
  // Whether this step sums the statistics over workers (on the host); else all stays on the device.
  // Forward's moments and running statistics from sums added on the host and summed over workers.
  void update_from_host_sums(const StepInfo& step, unsigned parts, size_t n);
  bool sums_over_workers(const StepInfo& step) const {
    return step.batch_stats && options_.stats == BatchStats::Global;
  }
  // Copies `count` host floats to device memory on the stream; returns once `host` has been staged
  // (pageable memory), so the caller may free it.
  void to_device(float* device, const float* host, size_t count);
  void upload(const std::vector<float>& values, Slot s) { to_device(slot(s), values.data(), values.size()); }
  const float* weight() const { return options_.affine ? params_[0].data() : nullptr; }
  const float* bias() const { return options_.affine ? params_[1].data() : nullptr; }

  CudaContext& cuda_;
  DeviceBuffer channel_;               // (kSlots, C) float, see Slot
  DeviceBuffer partials_;              // (2, C, P) double: the reduction's per-block sums
  std::vector<double> host_partials_;  // (2, C, P)
  double batch_count_ = 0;             // values per channel in the last training batch, all workers
};

template <ChannelSums kind>
unsigned CudaBatchNorm2d::launch_channel_sums(const float* a, const float* b, size_t n, const float* mean,
                                              const float* inv_std) {
  const ChannelLayout layout{channels_, spatial_, n * spatial_};
  const unsigned parts = partials_per_channel(channels_, layout.per_channel);
  auto* partials = static_cast<double*>(partials_.reserve(2 * channels_ * parts * sizeof(double)));
  const dim3 grid(static_cast<unsigned>(channels_), parts);
  channel_sums_kernel<kind><<<grid, kBlockThreads, 0, cuda_.stream()>>>(a, b, mean, inv_std, layout, partials);
  DPTRAIN_CUDA_CHECK_LAUNCH();
  return parts;
}

std::vector<double> CudaBatchNorm2d::read_channel_sums(unsigned parts) {
  const size_t count = 2 * channels_ * parts;
  host_partials_.resize(count);
  cudaStream_t stream = cuda_.stream();
  DPTRAIN_CUDA_CHECK(
      cudaMemcpyAsync(host_partials_.data(), partials_.get(), count * sizeof(double), cudaMemcpyDeviceToHost, stream));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> sums(2 * channels_, 0.0);
  for (size_t k = 0; k < 2 * channels_; ++k) {
    for (size_t p = 0; p < parts; ++p) sums[k] += host_partials_[k * parts + p];
  }
  return sums;
}

void CudaBatchNorm2d::to_device(float* device, const float* host, size_t count) {
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device, host, count * sizeof(float), cudaMemcpyHostToDevice, cuda_.stream()));
}

void CudaBatchNorm2d::forward(const Tensor& x, Tensor& y, const StepInfo& step) {
  const size_t n = check_forward_shapes(*this, x, y);
  const size_t count = x.num_elements();
  cudaStream_t stream = cuda_.stream();
  if (step.mode == Mode::Eval) {
    float* inv_std = slot(kEvalInvStd);
    inv_std_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(buffers_[1].data(), inv_std, channels_,
                                                                      options_.eps);
    DPTRAIN_CUDA_CHECK_LAUNCH();
    if (count == 0) return;
    normalize_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(x.data(), y.data(), count, channels_, spatial_,
                                                                    buffers_[0].data(), inv_std, weight(), bias());
    DPTRAIN_CUDA_CHECK_LAUNCH();
    return;
  }
  const unsigned parts = launch_channel_sums<ChannelSums::Moments>(x.data(), nullptr, n, nullptr, nullptr);
  if (!sums_over_workers(step)) {
    batch_count_ = static_cast<double>(n * spatial_);
    if (batch_count_ < 1) throw ShapeError("batchnorm2d: a training step with no values to normalise");
    moments_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
        static_cast<const double*>(partials_.get()), channels_, parts, batch_count_, options_.eps,
        static_cast<float>(options_.momentum), slot(kMean), slot(kInvStd), slot(kUnbiasedVar), buffers_[0].data(),
        buffers_[1].data());
    DPTRAIN_CUDA_CHECK_LAUNCH();
  } else {
    update_from_host_sums(step, parts, n);
  }
  if (count == 0) return;
  normalize_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(x.data(), y.data(), count, channels_, spatial_,
                                                                  slot(kMean), slot(kInvStd), weight(), bias());
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaBatchNorm2d::update_from_host_sums(const StepInfo& step, unsigned parts, size_t n) {
  cudaStream_t stream = cuda_.stream();
  std::vector<double> sums = read_channel_sums(parts);
  sums.push_back(static_cast<double>(n * spatial_));
  sum_over_workers(step, sums);
  const BatchMoments batch = moments_from_sums(sums);
  batch_count_ = batch.count;
  std::vector<float> moments(batch.mean);  // (3, C): mean, inv_std, unbiased var, as slots kMean..kUnbiasedVar
  moments.insert(moments.end(), batch.inv_std.begin(), batch.inv_std.end());
  moments.insert(moments.end(), batch.unbiased_var.begin(), batch.unbiased_var.end());
  upload(moments, kMean);
  running_update_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(buffers_[0].data(), buffers_[1].data(),
                                                                           slot(kMean), slot(kUnbiasedVar), channels_,
                                                                           static_cast<float>(options_.momentum));
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaBatchNorm2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (batch_count_ < 1) throw UsageError("batchnorm2d: backward without a training forward pass");
  cudaStream_t stream = cuda_.stream();
  // Partials of [sum of dy (C), sum of dy * x_hat (C)]
  const unsigned parts =
      launch_channel_sums<ChannelSums::Gradients>(dy.data(), x.data(), n, slot(kMean), slot(kInvStd));
  if (!sums_over_workers(step)) {
    // Gradients and means straight from the partials: this worker's batch is the whole batch.
    gradient_means_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
        static_cast<const double*>(partials_.get()), channels_, parts, batch_count_,
        options_.affine ? grads_[0].data() : nullptr, options_.affine ? grads_[1].data() : nullptr, slot(kMeanDy),
        slot(kMeanDyXhat));
    DPTRAIN_CUDA_CHECK_LAUNCH();
  } else {
    std::vector<double> sums = read_channel_sums(parts);
    if (options_.affine) {
      // This worker's sums: weight gradient = sum of dy * x_hat, bias gradient = sum of dy.
      const std::vector<float> local(sums.begin(), sums.end());
      to_device(grads_[0].data(), local.data() + channels_, channels_);
      to_device(grads_[1].data(), local.data(), channels_);
    }
    sum_over_workers(step, sums);
    std::vector<float> means(2 * channels_);  // (2, C): mean of dy, mean of dy * x_hat, as slots kMeanDy, kMeanDyXhat
    for (size_t k = 0; k < 2 * channels_; ++k) means[k] = static_cast<float>(sums[k] / batch_count_);
    upload(means, kMeanDy);
  }
  if (!dx || x.num_elements() == 0) return;
  const size_t count = x.num_elements();
  input_gradient_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(x.data(), dy.data(), dx->data(), count,
                                                                       channels_, spatial_, slot(kMean), slot(kInvStd),
                                                                       weight(), slot(kMeanDy), slot(kMeanDyXhat));
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

std::unique_ptr<Layer> make_cuda_batchnorm2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaBatchNorm2d>(BatchNorm2dOptions::read(options), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(batchnorm2d, cuda, make_cuda_batchnorm2d);

}  // namespace dptrain
