// CPU dropout: masks drawn per sample from counter-based keys, in parallel over samples.
#include "layers/dropout.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "layers/cpu/cpu_layers.h"
#include "layers/layer_util.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// dropout on the CPU.
class CpuDropout final : public DropoutLayer {
 public:
  using DropoutLayer::DropoutLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  // The Mode::Train forward pass's multiplier for each element: 0 or keep_scale().
  std::vector<float> mask_;  // (N, ...input_shape)
  size_t mask_batch_ = 0;    // N of the forward pass that filled mask_
};

void CpuDropout::forward(const Tensor& x, Tensor& y, const StepInfo& step) {
  const size_t n = check_forward_shapes(*this, x, y);
  const float* in = x.data();
  float* out = y.data();
  if (step.mode == Mode::Eval) {
    if (in != out) std::copy(in, in + x.num_elements(), out);
    return;
  }
  const size_t per_sample = num_elements(input_shape_);
  if (mask_.size() < n * per_sample) mask_.resize(n * per_sample);
  mask_batch_ = n;
  std::vector<uint64_t> keys(n);
  for (size_t s = 0; s < n; ++s) keys[s] = sample_key(step, s);
  const uint32_t threshold = drop_threshold();
  const float scale = keep_scale();
  float* mask = mask_.data();

#pragma omp parallel for schedule(static)
  for (size_t s = 0; s < n; ++s) {
    const uint64_t key = keys[s];
    float* m = mask + s * per_sample;
    const float* xi = in + s * per_sample;
    float* yi = out + s * per_sample;
#pragma omp simd
    for (size_t e = 0; e < per_sample; ++e) {
      m[e] = draw(key, e) < threshold ? 0.0f : scale;
      yi[e] = xi[e] * m[e];
    }
  }
}

void CpuDropout::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (!dx) return;
  const float* g = dy.data();
  float* out = dx->data();
  const size_t count = dy.num_elements();
  if (step.mode == Mode::Eval) {
    if (g != out) std::copy(g, g + count, out);
    return;
  }
  if (n != mask_batch_) {
    throw ShapeError("dropout: backward for a batch of " + std::to_string(n) + " after a training forward of " +
                     std::to_string(mask_batch_));
  }
  const float* mask = mask_.data();
#pragma omp parallel for simd schedule(static) if (count >= (1 << 14))
  for (size_t i = 0; i < count; ++i) out[i] = g[i] * mask[i];
}

}  // namespace

std::unique_ptr<Layer> make_cpu_dropout(ConfigMap& options, const Shape& input_shape, Backend&) {
  const DropoutOptions parsed = DropoutOptions::read(options);
  return std::make_unique<CpuDropout>(parsed, dropout_salt(options.path()), input_shape);
}

}  // namespace dptrain
