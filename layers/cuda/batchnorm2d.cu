// CUDA batchnorm2d: per-channel sums reduced in double on the device (a fixed grid of partials per
// channel, added in order, so the same bits every time). With the batch on this worker alone the
// partials are added and turned into moments and gradients on the device, without the host. Summed
// over workers in device memory (NCCL), the partials are added into one vector per pass
// (BatchStatsLayout) that the step's CrossWorkerSum sums in place on the compute stream's order, and
// the moments and gradients come from it on the device: the host never waits. Summed over workers in
// host memory (MPI staging), the partials are read back and summed as the CPU layer does.
// Activations may be float32 or bf16 (it follows the type it is offered); statistics are float32 and
// double either way.
// The kernels are in layers/cuda/batchnorm2d_kernels.cuh.
#include "layers/batchnorm2d.h"

#include <memory>
#include <vector>

#include "layers/cuda/batchnorm2d_kernels.cuh"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

using namespace batchnorm2d_kernels;  // NOLINT(build/namespaces): this layer's own kernels

// batchnorm2d on the GPU. Forward keeps the batch mean and 1/std on the device (and the count on the
// host, or with a DeviceSum on the device) for backward; the running statistics are device buffers,
// updated on the device.
class CudaBatchNorm2d final : public BatchNorm2dLayer {
 public:
  CudaBatchNorm2d(const BatchNorm2dOptions& options, const Shape& input_shape, CudaContext& cuda)
      : BatchNorm2dLayer(options, input_shape), cuda_(cuda) {}

  // The type it is offered, float32 or bf16 (statistics, scale and shift stay float32).
  ActivationTypes activation_types(DType offered) const override { return {offered, offered}; }
  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;
  void join_cross_worker_sums(Pass pass, const StepInfo& step) override;

 private:
  // Slots of channel_ (each C floats): the last training batch's mean, 1/std and unbiased variance,
  // evaluation's 1/std, and backward's global mean of dy and of dy * x_hat.
  enum Slot : size_t { kMean, kInvStd, kUnbiasedVar, kEvalInvStd, kMeanDy, kMeanDyXhat, kSlots };
  float* slot(Slot s) {
    return static_cast<float*>(channel_.reserve(kSlots * channels_ * sizeof(float))) + s * channels_;
  }
  MomentsOut moments_out() {
    return {slot(kMean), slot(kInvStd), slot(kUnbiasedVar), buffers_[0].data(), buffers_[1].data()};
  }
  // The vector one pass sums over workers in device memory (BatchStatsLayout): forward's is kept
  // until backward, which divides by its count.
  double* device_sums(Pass pass) {
    const size_t forward = layout_.values(Pass::Forward), backward = layout_.values(Pass::Backward);
    auto* sums = static_cast<double*>(sums_.reserve((forward + backward) * sizeof(double)));
    return pass == Pass::Forward ? sums : sums + forward;
  }

  // Queues the per-channel partials of [first sum (C), second sum (C)] over `n` samples into
  // partials_ and returns how many per channel; `mean` and `inv_std` (device) only for Gradients.
  template <ChannelSums kind>
  unsigned launch_channel_sums(const Tensor& a, const Tensor* b, size_t n, const float* mean, const float* inv_std);
  // y = x * scale + shift per channel, in the activations' type (float32 or bf16).
  void launch_normalize(const Tensor& x, Tensor& y, const float* mean, const float* inv_std);
  // The sums of the `parts` partials per channel, read back to the host (waits for the stream).
  std::vector<double> read_channel_sums(unsigned parts);
  // Forward's moments and running statistics from sums added on the host and summed over workers.
  void update_from_host_sums(const StepInfo& step, unsigned parts, size_t n);
  // Forward's moments and running statistics from the device vector of sums over workers.
  void update_from_device_sums(const StepInfo& step, unsigned parts, size_t n);
  // Copies `count` host floats to device memory on the stream; returns once `host` has been staged
  // (pageable memory), so the caller may free it.
  void to_device(float* device, const float* host, size_t count);
  void upload(const std::vector<float>& values, Slot s) { to_device(slot(s), values.data(), values.size()); }
  const float* weight() const { return options_.affine ? params_[0].data() : nullptr; }
  const float* bias() const { return options_.affine ? params_[1].data() : nullptr; }
  float* weight_grad() { return options_.affine ? grads_[0].data() : nullptr; }
  float* bias_grad() { return options_.affine ? grads_[1].data() : nullptr; }

  CudaContext& cuda_;
  DeviceBuffer channel_;               // (kSlots, C) float, see Slot
  DeviceBuffer partials_;              // (2, C, P) double: the reduction's per-block sums
  DeviceBuffer sums_;                  // (2C + 1) then (2C) double: forward's and backward's sums over workers
  std::vector<double> host_partials_;  // (2, C, P)
  // Values per channel in the last training batch: every worker's (Local, HostSum), or this
  // worker's (DeviceSum: the global count stays on the device); 0 before a training forward pass.
  double batch_count_ = 0;
};

template <ChannelSums kind>
unsigned CudaBatchNorm2d::launch_channel_sums(const Tensor& a, const Tensor* b, size_t n, const float* mean,
                                              const float* inv_std) {
  const ChannelLayout layout{channels_, spatial_, n * spatial_};
  const unsigned parts = partials_per_channel(channels_, layout.per_channel);
  auto* partials = static_cast<double*>(partials_.reserve(2 * channels_ * parts * sizeof(double)));
  const dim3 grid(static_cast<unsigned>(channels_), parts);
  if (a.dtype() == DType::BFloat16) {
    const auto* b16 = b ? static_cast<const __nv_bfloat16*>(b->raw()) : nullptr;
    channel_sums_kernel<kind, __nv_bfloat16><<<grid, kBlockThreads, 0, cuda_.stream()>>>(
        static_cast<const __nv_bfloat16*>(a.raw()), b16, mean, inv_std, layout, partials);
  } else {
    channel_sums_kernel<kind, float><<<grid, kBlockThreads, 0, cuda_.stream()>>>(a.data(), b ? b->data() : nullptr,
                                                                                 mean, inv_std, layout, partials);
  }
  DPTRAIN_CUDA_CHECK_LAUNCH();
  return parts;
}

void CudaBatchNorm2d::launch_normalize(const Tensor& x, Tensor& y, const float* mean, const float* inv_std) {
  const size_t count = x.num_elements();
  cudaStream_t stream = cuda_.stream();
  if (x.dtype() == DType::BFloat16) {
    normalize_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x.raw()),
                                                                    static_cast<__nv_bfloat16*>(y.raw()), count,
                                                                    channels_, spatial_, mean, inv_std, weight(), bias());
  } else {
    normalize_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(x.data(), y.data(), count, channels_, spatial_,
                                                                    mean, inv_std, weight(), bias());
  }
  DPTRAIN_CUDA_CHECK_LAUNCH();
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
    launch_normalize(x, y, buffers_[0].data(), inv_std);
    return;
  }
  const unsigned parts = launch_channel_sums<ChannelSums::Moments>(x, nullptr, n, nullptr, nullptr);
  switch (stats_path(step)) {
    case StatsPath::Local:
      batch_count_ = static_cast<double>(n * spatial_);
      if (batch_count_ < 1) throw ShapeError("batchnorm2d: a training step with no values to normalise");
      moments_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(static_cast<const double*>(partials_.get()),
                                                                        channels_, parts, batch_count_, options_.eps,
                                                                        static_cast<float>(options_.momentum),
                                                                        moments_out());
      DPTRAIN_CUDA_CHECK_LAUNCH();
      break;
    case StatsPath::HostSum:
      update_from_host_sums(step, parts, n);
      break;
    case StatsPath::DeviceSum:
      update_from_device_sums(step, parts, n);
      break;
  }
  if (count == 0) return;
  launch_normalize(x, y, slot(kMean), slot(kInvStd));
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

void CudaBatchNorm2d::update_from_device_sums(const StepInfo& step, unsigned parts, size_t n) {
  cudaStream_t stream = cuda_.stream();
  batch_count_ = static_cast<double>(n * spatial_);
  if (batch_count_ < 1) throw ShapeError("batchnorm2d: a training step with no values to normalise");
  double* sums = device_sums(Pass::Forward);
  gather_moment_sums_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
      static_cast<const double*>(partials_.get()), layout_, parts, batch_count_, sums);
  DPTRAIN_CUDA_CHECK_LAUNCH();
  step.batch_stats->sum(sums, layout_.values(Pass::Forward));
  moments_from_sums_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
      sums, layout_, options_.eps, static_cast<float>(options_.momentum), moments_out());
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaBatchNorm2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (batch_count_ < 1) throw UsageError("batchnorm2d: backward without a training forward pass");
  cudaStream_t stream = cuda_.stream();
  // Partials of [sum of dy (C), sum of dy * x_hat (C)]
  const unsigned parts =
      launch_channel_sums<ChannelSums::Gradients>(dy, &x, n, slot(kMean), slot(kInvStd));
  const auto* partials = static_cast<const double*>(partials_.get());
  switch (stats_path(step)) {
    case StatsPath::Local:
      // Gradients and means straight from the partials: this worker's batch is the whole batch.
      gradient_means_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
          partials, channels_, parts, batch_count_, weight_grad(), bias_grad(), slot(kMeanDy), slot(kMeanDyXhat));
      DPTRAIN_CUDA_CHECK_LAUNCH();
      break;
    case StatsPath::HostSum: {
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
      break;
    }
    case StatsPath::DeviceSum: {
      double* sums = device_sums(Pass::Backward);
      gather_gradient_sums_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(partials, layout_, parts, sums,
                                                                                      weight_grad(), bias_grad());
      DPTRAIN_CUDA_CHECK_LAUNCH();
      step.batch_stats->sum(sums, layout_.values(Pass::Backward));
      gradient_means_from_sums_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
          sums, device_sums(Pass::Forward), layout_, slot(kMeanDy), slot(kMeanDyXhat));
      DPTRAIN_CUDA_CHECK_LAUNCH();
      break;
    }
  }
  if (!dx || x.num_elements() == 0) return;
  const size_t count = x.num_elements();
  if (x.dtype() == DType::BFloat16) {
    input_gradient_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(x.raw()), static_cast<const __nv_bfloat16*>(dy.raw()),
        static_cast<__nv_bfloat16*>(dx->raw()), count, channels_, spatial_, slot(kMean), slot(kInvStd), weight(),
        slot(kMeanDy), slot(kMeanDyXhat));
  } else {
    input_gradient_kernel<<<grid_for(count), kBlockThreads, 0, stream>>>(
        x.data(), dy.data(), dx->data(), count, channels_, spatial_, slot(kMean), slot(kInvStd), weight(),
        slot(kMeanDy), slot(kMeanDyXhat));
  }
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaBatchNorm2d::join_cross_worker_sums(Pass pass, const StepInfo& step) {
  if (step.mode != Mode::Train || stats_path(step) != StatsPath::DeviceSum) {
    BatchNorm2dLayer::join_cross_worker_sums(pass, step);
    return;
  }
  // This worker adds zeros; the running statistics still follow the global batch.
  cudaStream_t stream = cuda_.stream();
  double* sums = device_sums(pass);
  DPTRAIN_CUDA_CHECK(cudaMemsetAsync(sums, 0, layout_.values(pass) * sizeof(double), stream));
  step.batch_stats->sum(sums, layout_.values(pass));
  if (pass == Pass::Backward) return;
  moments_from_sums_kernel<<<grid_for(channels_), kBlockThreads, 0, stream>>>(
      sums, layout_, options_.eps, static_cast<float>(options_.momentum), moments_out());
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

std::unique_ptr<Layer> make_cuda_batchnorm2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaBatchNorm2d>(BatchNorm2dOptions::read(options), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(batchnorm2d, cuda, make_cuda_batchnorm2d);

}  // namespace dptrain
