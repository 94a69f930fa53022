// SoftmaxCrossEntropyLayer: the loss -log softmax(logits)[label], summed over the batch.
#pragma once

#include "layers/layer.h"

namespace dptrain {

// Backend-independent part of softmax_cross_entropy. Input (classes), output the same logits
// (forward passes them through); `loss` computes the loss, its gradient and the accuracy count.
class SoftmaxCrossEntropyLayer : public LossLayer {
 public:
  SoftmaxCrossEntropyLayer(const Shape& input_shape, Backend& backend);
  const char* type() const override { return "softmax_cross_entropy"; }

  size_t classes() const { return input_shape_[0]; }

 protected:
  // Throws ShapeError unless logits is (N, classes) and dlogits (when given) matches it; returns N.
  size_t check_loss_shapes(const Tensor& logits, const Tensor* dlogits) const;
  // Throws Error naming the first label outside [0, classes).
  void check_labels(const int32_t* labels, size_t n) const;
};

}  // namespace dptrain
