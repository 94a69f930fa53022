// CPU softmax_cross_entropy: numerically stable log-softmax, one sample at a time, in double.
#include "layers/softmax_cross_entropy.h"

#include <cmath>
#include <memory>

#include "layers/registry.h"

namespace dptrain {

namespace {

// Each sample's loss is rounded to a multiple of 2^-24 (6e-8), so that sums of losses below 2^29 in
// double are exact: the same bits over samples, steps and workers in any order and split.
double on_loss_grid(double loss) {
  constexpr double kUnits = 16777216.0;  // 2^24
  return std::nearbyint(loss * kUnits) / kUnits;
}

// softmax_cross_entropy on the CPU.
class CpuSoftmaxCrossEntropy final : public SoftmaxCrossEntropyLayer {
 public:
  using SoftmaxCrossEntropyLayer::SoftmaxCrossEntropyLayer;

  LossStats loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) override;
};

LossStats CpuSoftmaxCrossEntropy::loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) {
  const size_t n = check_loss_shapes(logits, dlogits);
  check_labels(labels, n);
  const size_t k = classes();
  const double smoothing = label_smoothing();
  const double on_label = 1.0 - smoothing;                      // weight of the label in the target
  const double per_class = smoothing / static_cast<double>(k);  // weight of every class in the target
  LossStats stats;
  stats.count = n;
  for (size_t s = 0; s < n; ++s) {
    const float* z = logits.data() + s * k;  // (classes)
    size_t best = 0;
    for (size_t j = 1; j < k; ++j) {
      if (z[j] > z[best]) best = j;
    }
    const double top = z[best];
    double sum = 0.0;
    double shifted_sum = 0.0;  // sum of (z - top)
    for (size_t j = 0; j < k; ++j) {
      sum += std::exp(static_cast<double>(z[j]) - top);
      shifted_sum += static_cast<double>(z[j]) - top;
    }
    const double log_sum = std::log(sum);  // log sum exp(z - top)
    const auto label = static_cast<size_t>(labels[s]);
    const double nll = log_sum - (static_cast<double>(z[label]) - top);      // -log p_label
    const double mean_nll = log_sum - shifted_sum / static_cast<double>(k);  // mean_k -log p_k
    stats.loss_sum += on_loss_grid(smoothing > 0 ? on_label * nll + smoothing * mean_nll : nll);
    stats.correct += best == label ? 1 : 0;
    if (!dlogits) continue;
    float* g = dlogits->data() + s * k;  // (classes)
    for (size_t j = 0; j < k; ++j) {
      const double p = std::exp(static_cast<double>(z[j]) - top - log_sum);
      const double target = (j == label ? on_label : 0.0) + per_class;
      g[j] = static_cast<float>(grad_scale * (p - target));
    }
  }
  return stats;
}

std::unique_ptr<Layer> make_cpu_softmax_cross_entropy(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CpuSoftmaxCrossEntropy>(SoftmaxCrossEntropyOptions::read(options), input_shape, backend);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(softmax_cross_entropy, cpu, make_cpu_softmax_cross_entropy);

}  // namespace dptrain
