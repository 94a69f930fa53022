#include "layers/layer.h"

#include "layers/layer_util.h"
#include "runtime/core/errors.h"

namespace dptrain {

void Layer::bind(std::vector<Tensor> params, std::vector<Tensor> grads) {
  const auto specs = parameters();
  if (params.size() != specs.size() || grads.size() != specs.size()) {
    throw ShapeError(std::string(type()) + ": expected " + std::to_string(specs.size()) + " parameter tensors");
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (params[i].shape() != specs[i].shape || grads[i].shape() != specs[i].shape) {
      throw ShapeError(std::string(type()) + ": parameter '" + specs[i].name + "' must have shape " +
                       to_string(specs[i].shape));
    }
  }
  params_ = std::move(params);
  grads_ = std::move(grads);
}

void LossLayer::forward(const Tensor& x, Tensor& y, const StepInfo&) { copy_unless_shared(backend_, x, y); }

void LossLayer::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx, const StepInfo&) {
  if (dx) copy_unless_shared(backend_, dy, *dx);
}

}  // namespace dptrain
