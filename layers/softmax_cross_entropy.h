// SoftmaxCrossEntropyLayer: the loss -log softmax(logits)[label], optionally label-smoothed,
// summed over the batch.
#pragma once

#include "layers/layer.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// YAML options of `softmax_cross_entropy`.
struct SoftmaxCrossEntropyOptions {
  double label_smoothing = 0;  // `label_smoothing`, default 0, in [0, 1)

  static SoftmaxCrossEntropyOptions read(ConfigMap& options);
};

// Backend-independent part of softmax_cross_entropy. Input (classes), output the same logits
// (forward passes them through); `loss` computes the loss, its gradient and the accuracy count.
//
// As torch.nn.CrossEntropyLoss(label_smoothing=eps) with K classes and p = softmax(logits):
// the loss of a sample is (1 - eps) * (-log p_label) + eps * mean_k(-log p_k), and its gradient
// is grad_scale * (p - ((1 - eps) * onehot(label) + eps / K)). eps = 0 is the plain loss.
// Accuracy counts samples whose arg-max (the first of ties) is the label.
class SoftmaxCrossEntropyLayer : public LossLayer {
 public:
  SoftmaxCrossEntropyLayer(const SoftmaxCrossEntropyOptions& options, const Shape& input_shape, Backend& backend);
  const char* type() const override { return "softmax_cross_entropy"; }

  size_t classes() const { return input_shape_[0]; }
  double label_smoothing() const { return options_.label_smoothing; }

 protected:
  // Throws ShapeError unless logits is (N, classes) and dlogits (when given) matches it; returns N.
  size_t check_loss_shapes(const Tensor& logits, const Tensor* dlogits) const;
  // Throws Error naming the first label outside [0, classes).
  void check_labels(const int32_t* labels, size_t n) const;

  SoftmaxCrossEntropyOptions options_;
};

}  // namespace dptrain
