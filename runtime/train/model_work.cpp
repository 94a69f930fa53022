// The arithmetic and memory traffic of a training step, counted from the layers' shapes.
#include <algorithm>

#include "runtime/train/model.h"

namespace dptrain {

LayerWork Model::training_work() const {
  LayerWork total;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (absorbed_[i]) continue;  // its consumer computes it, reading what it would have read
    const bool needs_dx = std::any_of(reads_[i].begin(), reads_[i].end(),
                                      [this](size_t j) { return j != kModelInput && requires_grad_[j]; });
    LayerWork w = layers_[i]->work(needs_dx ? InputGradient::Computed : InputGradient::Skipped);
    // The loss layer's gradient comes from LossLayer::loss, not from its backward.
    if (!requires_grad_[i] || i + 1 == layers_.size()) w.backward_flops = w.backward_bytes = 0;
    total += w;
  }
  return total;
}

}  // namespace dptrain
