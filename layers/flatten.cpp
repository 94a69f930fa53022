#include "layers/flatten.h"

#include "runtime/core/errors.h"

namespace dptrain {

FlattenLayer::FlattenLayer(const Shape& input_shape) {
  if (input_shape.empty()) throw ShapeError("flatten needs an input with at least one dimension");
  input_shape_ = input_shape;
  output_shape_ = {num_elements(input_shape)};
}

}  // namespace dptrain
