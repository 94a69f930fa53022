// CPU batchnorm2d: per-channel loops split over channels across threads; each (H, W) plane is summed
// in vectorised float and the plane sums are added in double.
#include "layers/batchnorm2d.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/errors.h"
#include "runtime/core/kernel_dispatch.h"

namespace dptrain {

namespace {

// Float lanes vectorise where double ones run at half width and convert every value: runs of at
// most kChunk values are summed in float (keeping about six digits) and the runs are added in double.
constexpr size_t kChunk = 1024;

// Per-channel accumulators: the sum of some values and of a second, weighted quantity.
struct ChannelSums {
  double sum = 0, weighted = 0;
};

// Runs one call of the kernels below sums at most, into arrays on the caller's stack.
constexpr size_t kChunksPerCall = 64;

// sums[r] and squares[r]: the float sums of x and x * x over run r of kChunk values of x[0, count)
// (count <= kChunk * kChunksPerCall; the last run may be shorter).
DPTRAIN_CPU_KERNEL void chunk_sums(const float* x, size_t count, float* sums, float* squares) {
  for (size_t r = 0, begin = 0; begin < count; ++r, begin += kChunk) {
    const size_t end = std::min(count, begin + kChunk);
    float sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum, sq)
    for (size_t i = begin; i < end; ++i) {
      sum += x[i];
      sq += x[i] * x[i];
    }
    sums[r] = sum;
    squares[r] = sq;
  }
}

// sums[r] and products[r]: the float sums of dy and dy * (x - mean) over run r of dy[0, count).
DPTRAIN_CPU_KERNEL void gradient_chunk_sums(const float* dy, const float* x, float mean, size_t count, float* sums,
                                            float* products) {
  for (size_t r = 0, begin = 0; begin < count; ++r, begin += kChunk) {
    const size_t end = std::min(count, begin + kChunk);
    float sum = 0, prod = 0;
#pragma omp simd reduction(+ : sum, prod)
    for (size_t i = begin; i < end; ++i) {
      sum += dy[i];
      prod += dy[i] * (x[i] - mean);
    }
    sums[r] = sum;
    products[r] = prod;
  }
}

// Calls take(sum, squares) with the float sums of x and x * x over each run of at most kChunk
// values of x[0, count).
template <class Take>
void plane_chunks(const float* x, size_t count, Take take) {
  float sums[kChunksPerCall], squares[kChunksPerCall];
  for (size_t begin = 0; begin < count; begin += kChunk * kChunksPerCall) {
    const size_t n = std::min(count - begin, kChunk * kChunksPerCall);
    chunk_sums(x + begin, n, sums, squares);
    for (size_t r = 0; r * kChunk < n; ++r) take(sums[r], squares[r]);
  }
}

// Calls take(sum, products) with the float sums of dy and dy * (x - mean) over each run of at
// most kChunk values of dy[0, count).
template <class Take>
void gradient_plane_chunks(const float* dy, const float* x, float mean, size_t count, Take take) {
  float sums[kChunksPerCall], products[kChunksPerCall];
  for (size_t begin = 0; begin < count; begin += kChunk * kChunksPerCall) {
    const size_t n = std::min(count - begin, kChunk * kChunksPerCall);
    gradient_chunk_sums(dy + begin, x + begin, mean, n, sums, products);
    for (size_t r = 0; r * kChunk < n; ++r) take(sums[r], products[r]);
  }
}

// Adds the runs' float sums to a channel's double sums.
struct AddToChannel {
  ChannelSums& sums;
  void operator()(float sum, float weighted) const {
    sums.sum += sum;
    sums.weighted += weighted;
  }
};

// Adds the runs' float sums exactly to sums (first, second) of channel c (the second times
// `factor`).
struct AddExactly {
  ExactSpan sums;
  size_t c, channels;
  ExactScale scale;
  double factor = 1.0;
  void operator()(float sum, float weighted) const {
    exact::add(static_cast<double>(sum), sums.sums[c], scale);
    exact::add(static_cast<double>(weighted) * factor, sums.sums[channels + c], scale);
  }
};

// batchnorm2d on the CPU. Forward keeps the batch mean, 1/std and count that backward needs.
class CpuBatchNorm2d final : public BatchNorm2dLayer {
 public:
  using BatchNorm2dLayer::BatchNorm2dLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override {
    const size_t n = check_forward_shapes(*this, x, y);
    if (step.mode == Mode::Eval) {
      std::vector<float> mean(channels_), inv_std(channels_);
      for (size_t c = 0; c < channels_; ++c) {
        mean[c] = buffers_[0].data()[c];
        inv_std[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(buffers_[1].data()[c]) + options_.eps));
      }
      normalize(x, y, n, mean, inv_std);
      return;
    }
    const std::vector<double> sums = step.summation == Summation::Exact ? exact_statistics(x, n, step) : statistics(x, n, step);
    batch_ = moments_from_sums(sums);
    update_running_statistics(batch_);
    normalize(x, y, n, batch_.mean, batch_.inv_std);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override {
    const size_t n = check_backward_shapes(*this, x, y, dy, dx);
    if (batch_.mean.size() != channels_) {
      throw UsageError("batchnorm2d: backward needs the statistics of a training forward pass first");
    }
    const std::vector<double> sums =
        step.summation == Summation::Exact ? exact_gradient_sums(x, dy, n, step) : gradient_sums(x, dy, n, step);
    if (!dx) return;
    const float* in = x.data();
    const float* g = dy.data();
    float* out = dx->data();
    const double count = batch_.count;
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const float mean = batch_.mean[c], inv_std = batch_.inv_std[c];
      const float scale = (options_.affine ? params_[0].data()[c] : 1.0f) * inv_std;
      const auto mean_dy = static_cast<float>(sums[c] / count);
      const auto mean_dy_xhat = static_cast<float>(sums[channels_ + c] / count);
      for (size_t s = 0; s < n; ++s) {
        const size_t at = (s * channels_ + c) * spatial_;
        for (size_t i = 0; i < spatial_; ++i) {
          const float xhat = (in[at + i] - mean) * inv_std;
          out[at + i] = scale * (g[at + i] - mean_dy - xhat * mean_dy_xhat);
        }
      }
    }
  }

 private:
  // [sum of x (C), sum of x^2 (C), count] over the global batch, summed in float and double.
  std::vector<double> statistics(const Tensor& x, size_t n, const StepInfo& step) const {
    std::vector<double> sums(2 * channels_ + 1, 0.0);
    const float* in = x.data();
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      ChannelSums channel;  // of x and x * x
      for (size_t s = 0; s < n; ++s) plane_chunks(in + (s * channels_ + c) * spatial_, spatial_, AddToChannel{channel});
      sums[c] = channel.sum;
      sums[channels_ + c] = channel.weighted;
    }
    sums[2 * channels_] = static_cast<double>(n * spatial_);
    sum_over_workers(step, sums);
    return sums;
  }

  // The same, summed exactly (Summation::Exact): the float sum of each run of a plane is one term.
  std::vector<double> exact_statistics(const Tensor& x, size_t n, const StepInfo& step) {
    reset_exact_local();
    const float* in = x.data();
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const AddExactly add{exact_local_.span(), static_cast<size_t>(c), channels_, ExactScale::Statistic};
      for (size_t s = 0; s < n; ++s) {
        plane_chunks(in + (s * channels_ + c) * spatial_, spatial_, add);
      }
    }
    return exact_over_workers(step, exact_local_, Pass::Forward, static_cast<double>(n * spatial_));
  }

  // [sum of dy (C), sum of dy * x_hat (C)] over the global batch; this worker's sums are the
  // gradients of weight and bias.
  std::vector<double> gradient_sums(const Tensor& x, const Tensor& dy, size_t n, const StepInfo& step) {
    const float* in = x.data();
    const float* g = dy.data();
    std::vector<double> sums(2 * channels_, 0.0);
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const float mean = batch_.mean[c], inv_std = batch_.inv_std[c];
      ChannelSums channel;  // of dy and dy * (x - mean), where x_hat = (x - mean) * inv_std
      for (size_t s = 0; s < n; ++s) {
        const size_t at = (s * channels_ + c) * spatial_;
        gradient_plane_chunks(g + at, in + at, mean, spatial_, AddToChannel{channel});
      }
      sums[c] = channel.sum;
      sums[channels_ + c] = channel.weighted * inv_std;
    }
    if (options_.affine) {
      for (size_t c = 0; c < channels_; ++c) {
        grads_[0].data()[c] = static_cast<float>(sums[channels_ + c]);
        grads_[1].data()[c] = static_cast<float>(sums[c]);
      }
    }
    sum_over_workers(step, sums);
    return sums;
  }

  // The same, summed exactly; this worker's exact sums go to the exact gradients.
  std::vector<double> exact_gradient_sums(const Tensor& x, const Tensor& dy, size_t n, const StepInfo& step) {
    reset_exact_local();
    const float* in = x.data();
    const float* g = dy.data();
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const AddExactly add{exact_local_.span(), static_cast<size_t>(c), channels_, ExactScale::Gradient,
                           static_cast<double>(batch_.inv_std[c])};
      for (size_t s = 0; s < n; ++s) {
        const size_t at = (s * channels_ + c) * spatial_;
        gradient_plane_chunks(g + at, in + at, batch_.mean[c], spatial_, add);
      }
    }
    if (options_.affine) {
      const int64_t* local = exact_local_.data();
      std::copy(local + channels_, local + 2 * channels_, exact_grads_.at(0).sums);
      std::copy(local, local + channels_, exact_grads_.at(1).sums);
    }
    return exact_over_workers(step, exact_local_, Pass::Backward, 0.0);
  }

  void reset_exact_local() {
    if (exact_local_.size() != 2 * channels_) exact_local_ = ExactSums(2 * channels_);
    exact_local_.zero();
  }

  // y = (x - mean) * inv_std * weight + bias, per channel.
  void normalize(const Tensor& x, Tensor& y, size_t n, const std::vector<float>& mean,
                 const std::vector<float>& inv_std) const {
    const float* in = x.data();
    float* out = y.data();
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const float scale = (options_.affine ? params_[0].data()[c] : 1.0f) * inv_std[c];
      const float shift = (options_.affine ? params_[1].data()[c] : 0.0f) - mean[c] * scale;
      for (size_t s = 0; s < n; ++s) {
        const size_t at = (s * channels_ + c) * spatial_;
        for (size_t i = 0; i < spatial_; ++i) out[at + i] = in[at + i] * scale + shift;
      }
    }
  }

  BatchMoments batch_;     // of the last training forward pass
  ExactSums exact_local_;  // Summation::Exact: this worker's 2C sums of the pass
};

std::unique_ptr<Layer> make_cpu_batchnorm2d(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuBatchNorm2d>(BatchNorm2dOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(batchnorm2d, cpu, make_cpu_batchnorm2d);

}  // namespace dptrain
