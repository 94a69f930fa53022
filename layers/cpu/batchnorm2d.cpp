// CPU batchnorm2d: per-channel loops split over channels across threads; each (H, W) plane is summed
// in vectorised float and the plane sums are added in double.
#include "layers/batchnorm2d.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Float lanes vectorise where double ones run at half width and convert every value: runs of at
// most kChunk values are summed in float (keeping about six digits) and the runs are added in double.
constexpr size_t kChunk = 1024;

// Per-channel accumulators: the sum of some values and of a second, weighted quantity.
struct ChannelSums {
  double sum = 0, weighted = 0;
};

// Adds x[0, count) to sums.sum and x * x to sums.weighted.
void add_plane(const float* x, size_t count, ChannelSums& sums) {
  for (size_t begin = 0; begin < count; begin += kChunk) {
    const size_t end = std::min(count, begin + kChunk);
    float sum = 0, squares = 0;
#pragma omp simd reduction(+ : sum, squares)
    for (size_t i = begin; i < end; ++i) {
      sum += x[i];
      squares += x[i] * x[i];
    }
    sums.sum += sum;
    sums.weighted += squares;
  }
}

// Adds dy[0, count) to sums.sum and dy * (x - mean) to sums.weighted.
void add_gradient_plane(const float* dy, const float* x, float mean, size_t count, ChannelSums& sums) {
  for (size_t begin = 0; begin < count; begin += kChunk) {
    const size_t end = std::min(count, begin + kChunk);
    float sum = 0, products = 0;
#pragma omp simd reduction(+ : sum, products)
    for (size_t i = begin; i < end; ++i) {
      sum += dy[i];
      products += dy[i] * (x[i] - mean);
    }
    sums.sum += sum;
    sums.weighted += products;
  }
}

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
    std::vector<double> sums(2 * channels_ + 1, 0.0);
    const float* in = x.data();
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      ChannelSums channel;  // of x and x * x
      for (size_t s = 0; s < n; ++s) add_plane(in + (s * channels_ + c) * spatial_, spatial_, channel);
      sums[c] = channel.sum;
      sums[channels_ + c] = channel.weighted;
    }
    sums[2 * channels_] = static_cast<double>(n * spatial_);
    sum_over_workers(step, sums);
    batch_ = moments_from_sums(sums);
    update_running_statistics(batch_);
    normalize(x, y, n, batch_.mean, batch_.inv_std);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override {
    const size_t n = check_backward_shapes(*this, x, y, dy, dx);
    if (batch_.mean.size() != channels_) {
      throw UsageError("batchnorm2d: backward needs the statistics of a training forward pass first");
    }
    const float* in = x.data();
    const float* g = dy.data();
    std::vector<double> sums(2 * channels_, 0.0);  // sum of dy, sum of dy * x_hat, per channel
    const auto channels = static_cast<int64_t>(channels_);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c) {
      const float mean = batch_.mean[c], inv_std = batch_.inv_std[c];
      ChannelSums channel;  // of dy and dy * (x - mean), where x_hat = (x - mean) * inv_std
      for (size_t s = 0; s < n; ++s) {
        const size_t at = (s * channels_ + c) * spatial_;
        add_gradient_plane(g + at, in + at, mean, spatial_, channel);
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
    if (!dx) return;
    float* out = dx->data();
    const double count = batch_.count;
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

  BatchMoments batch_;  // of the last training forward pass
};

std::unique_ptr<Layer> make_cpu_batchnorm2d(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuBatchNorm2d>(BatchNorm2dOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(batchnorm2d, cpu, make_cpu_batchnorm2d);

}  // namespace dptrain
