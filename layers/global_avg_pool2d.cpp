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

LayerWork GlobalAvgPool2dLayer::work(InputGradient dx) const {
  LayerWork w = Layer::work(dx);
  const double elements = static_cast<double>(channels_ * height_ * width_);
  w.forward_flops = elements;
  w.backward_flops = dx == InputGradient::Computed ? elements : 0;
  // Backward reads dy, not x.
  if (dx == InputGradient::Computed) w.backward_bytes = kFloatBytes * (elements + static_cast<double>(channels_));
  return w;
}

}  // namespace dptrain
