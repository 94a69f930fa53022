#include "layers/softmax_cross_entropy.h"

#include <string>

#include "runtime/core/errors.h"

namespace dptrain {

SoftmaxCrossEntropyOptions SoftmaxCrossEntropyOptions::read(ConfigMap& options) {
  SoftmaxCrossEntropyOptions o;
  o.label_smoothing = options.get_double_checked(
      "label_smoothing", 0.0, [](double x) { return x >= 0 && x < 1; }, "must be in [0, 1)");
  return o;
}

SoftmaxCrossEntropyLayer::SoftmaxCrossEntropyLayer(const SoftmaxCrossEntropyOptions& options, const Shape& input_shape,
                                                   Backend& backend)
    : LossLayer(backend), options_(options) {
  if (input_shape.size() != 1 || input_shape[0] == 0) {
    throw ShapeError("softmax_cross_entropy needs (classes) logits per sample, got " + to_string(input_shape) +
                     " (add a flatten or dense layer before it)");
  }
  input_shape_ = input_shape;
  output_shape_ = input_shape;
}

size_t SoftmaxCrossEntropyLayer::check_loss_shapes(const Tensor& logits, const Tensor* dlogits) const {
  if (logits.rank() != 2 || logits.shape()[1] != classes()) {
    throw ShapeError("softmax_cross_entropy: logits have shape " + to_string(logits.shape()) + ", expected (N, " +
                     std::to_string(classes()) + ")");
  }
  if (dlogits && dlogits->shape() != logits.shape()) {
    throw ShapeError("softmax_cross_entropy: logit gradient has shape " + to_string(dlogits->shape()) + ", expected " +
                     to_string(logits.shape()));
  }
  return logits.shape()[0];
}

void SoftmaxCrossEntropyLayer::check_labels(const int32_t* labels, size_t n) const {
  if (n > 0 && !labels) throw Error("softmax_cross_entropy: no labels given");
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= classes()) {
      throw Error("softmax_cross_entropy: label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                  " in the batch is outside [0, " + std::to_string(classes()) + ") for a model with " +
                  std::to_string(classes()) + " classes");
    }
  }
}

}  // namespace dptrain
