#include "layers/global_avg_pool2d.h"

#include "runtime/core/errors.h"

namespace dptrain {

GlobalAvgPool2dLayer::GlobalAvgPool2dLayer(const Shape& input_shape) {
  if (input_shape.size() != 3) {
    throw ShapeError("global_avg_pool2d needs a (channels, height, width) input, got " + to_string(input_shape));
  }
  channels_ = input_shape[0];
  height_ = input_shape[1];
  width_ = input_shape[2];
  if (channels_ == 0 || height_ == 0 || width_ == 0)
    throw ShapeError("global_avg_pool2d input " + to_string(input_shape) + " is empty");
  input_shape_ = input_shape;
  output_shape_ = {channels_, 1, 1};
}

}  // namespace dptrain
