#include "layers/flatten.h"

#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/errors.h"

namespace dptrain {

FlattenLayer::FlattenLayer(const Shape& input_shape, Backend& backend) : backend_(backend) {
  if (input_shape.empty()) throw ShapeError("flatten needs an input with at least one dimension");
  input_shape_ = input_shape;
  output_shape_ = {num_elements(input_shape)};
}

LayerWork FlattenLayer::work(InputGradient dx) const {
  const double bytes = 2 * kFloatBytes * static_cast<double>(num_elements(input_shape_));
  LayerWork w;
  w.forward_bytes = bytes;
  w.backward_bytes = dx == InputGradient::Computed ? bytes : 0;
  return w;
}

void FlattenLayer::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  check_forward_shapes(*this, x, y);
  copy_unless_shared(backend_, x, y);
}

void FlattenLayer::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  check_backward_shapes(*this, x, y, dy, dx);
  if (dx) copy_unless_shared(backend_, dy, *dx);
}

namespace {

std::unique_ptr<Layer> make_flatten(ConfigMap&, const Shape& input_shape, Backend& backend) {
  return std::make_unique<FlattenLayer>(input_shape, backend);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(flatten, any, make_flatten);

}  // namespace dptrain
