#include "layers/conv2d.h"

#include "runtime/core/errors.h"

namespace dptrain {

Conv2dOptions Conv2dOptions::read(ConfigMap& options) {
  Conv2dOptions o;
  o.out_channels = read_positive(options, "out_channels");
  o.kernel = read_positive(options, "kernel");
  o.stride = read_positive(options, "stride", 1);
  o.padding = options.get_size("padding", 0);
  o.bias = read_bias(options);
  return o;
}

Conv2dLayer::Conv2dLayer(const Conv2dOptions& options, const Shape& input_shape) : options_(options) {
  if (input_shape.size() != 3) {
    throw ShapeError("conv2d needs a (channels, height, width) input, got " + to_string(input_shape));
  }
  in_channels_ = input_shape[0];
  in_height_ = input_shape[1];
  in_width_ = input_shape[2];
  if (in_channels_ == 0) throw ShapeError("conv2d input has no channels");
  out_height_ = window_output_size(in_height_, options_.kernel, options_.stride, options_.padding, "height");
  out_width_ = window_output_size(in_width_, options_.kernel, options_.stride, options_.padding, "width");
  input_shape_ = input_shape;
  output_shape_ = {options_.out_channels, out_height_, out_width_};
}

std::vector<ParamSpec> Conv2dLayer::parameters() const {
  std::vector<ParamSpec> specs{{"weight", {options_.out_channels, in_channels_, options_.kernel, options_.kernel}}};
  if (options_.bias == BiasTerm::Enabled) specs.push_back({"bias", {options_.out_channels}});
  return specs;
}

void Conv2dLayer::init_parameters(Rng& rng) {
  init_he_uniform(params_.at(0), in_channels_ * options_.kernel * options_.kernel, rng);
  if (options_.bias == BiasTerm::Enabled) params_.at(1).zero();
}

}  // namespace dptrain
