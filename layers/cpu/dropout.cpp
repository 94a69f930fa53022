// CPU dropout: masks drawn per sample from counter-based keys, in parallel over samples.
#include "layers/dropout.h"

#include <memory>
#include <string>
#include <vector>

#include "layers/registry.h"

namespace dptrain {

namespace {

// dropout on the CPU.
class CpuDropout final : public DropoutLayer {
 public:
  using DropoutLayer::DropoutLayer;

 private:
  void forward_train(const Tensor& x, Tensor& y, const std::vector<uint64_t>& keys) override;
  void backward_train(const Tensor& dy, Tensor& dx) override;

  // The training forward pass's multiplier for each element: 0 or keep_scale().
  std::vector<float> mask_;  // (N, ...input_shape)
};

void CpuDropout::forward_train(const Tensor& x, Tensor& y, const std::vector<uint64_t>& keys) {
  const size_t n = keys.size();
  const size_t per_sample = num_elements(input_shape_);
  if (mask_.size() < n * per_sample) mask_.resize(n * per_sample);
  const uint32_t threshold = drop_threshold();
  const float scale = keep_scale();
  const float* in = x.data();
  float* out = y.data();
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

void CpuDropout::backward_train(const Tensor& dy, Tensor& dx) {
  const float* g = dy.data();
  const float* mask = mask_.data();
  float* out = dx.data();
  const size_t count = dy.num_elements();
#pragma omp parallel for simd schedule(static) if (count >= (1 << 14))
  for (size_t i = 0; i < count; ++i) out[i] = g[i] * mask[i];
}

std::unique_ptr<Layer> make_cpu_dropout(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  const DropoutOptions parsed = DropoutOptions::read(options);
  return std::make_unique<CpuDropout>(parsed, dropout_salt(options.path()), input_shape, backend);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(dropout, cpu, make_cpu_dropout);

}  // namespace dptrain
