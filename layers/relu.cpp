#include "layers/relu.h"

#include "runtime/core/errors.h"

namespace dptrain {

ReluLayer::ReluLayer(const Shape& input_shape) {
  if (input_shape.empty()) throw ShapeError("relu needs an input with at least one dimension");
  input_shape_ = input_shape;
  output_shape_ = input_shape;
}

}  // namespace dptrain
