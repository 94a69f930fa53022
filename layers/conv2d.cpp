#include "layers/conv2d.h"

#include <string>

#include "layers/layer_util.h"
#include "runtime/core/errors.h"

namespace dptrain {

Conv2dOptions Conv2dOptions::read(ConfigMap& options, const Shape& input_shape) {
  Conv2dOptions o;
  o.out_channels = read_positive(options, "out_channels");
  o.kernel = read_positive(options, "kernel");
  o.stride = read_positive(options, "stride", 1);
  o.padding = options.get_count("padding", 0, CountRange{0, kMaxLayerSize, ""});
  o.dilation = read_positive(options, "dilation", 1);
  o.groups = read_positive(options, "groups", 1);
  o.bias = read_bias(options);
  o.init = read_init(options);
  const std::string groups = std::to_string(o.groups);
  if (o.out_channels % o.groups != 0) {
    options.fail("groups", "must divide out_channels (" + std::to_string(o.out_channels) + "), got " + groups +
                               ": choose a divisor of it, or change out_channels");
  }
  // A wrong rank is the constructor's ShapeError; here only the channel count matters.
  if (input_shape.size() == 3 && input_shape[0] % o.groups != 0) {
    options.fail("groups", "must divide the input channels (" + std::to_string(input_shape[0]) + "), got " + groups +
                               ": choose a divisor of it (groups = input channels is a depthwise convolution)");
  }
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
  if (options_.groups == 0 || in_channels_ % options_.groups != 0 || options_.out_channels % options_.groups != 0) {
    throw ShapeError("conv2d groups " + std::to_string(options_.groups) + " must divide the input channels " +
                     std::to_string(in_channels_) + " and out_channels " + std::to_string(options_.out_channels));
  }
  // The window a dilated kernel spans.
  const size_t span = options_.dilation * (options_.kernel - 1) + 1;
  out_height_ = window_output_size(in_height_, span, options_.stride, options_.padding, "height");
  out_width_ = window_output_size(in_width_, span, options_.stride, options_.padding, "width");
  input_shape_ = input_shape;
  output_shape_ = {options_.out_channels, out_height_, out_width_};
}

std::vector<ParamSpec> Conv2dLayer::parameters() const {
  std::vector<ParamSpec> specs{
      {"weight", {options_.out_channels, group_in_channels(), options_.kernel, options_.kernel}}};
  if (options_.bias == BiasTerm::Enabled) specs.push_back({"bias", {options_.out_channels}});
  return specs;
}

LayerWork Conv2dLayer::work(InputGradient dx) const {
  const double outputs = static_cast<double>(options_.out_channels * out_height_ * out_width_);
  const double product = 2 * outputs * static_cast<double>(group_in_channels() * options_.kernel * options_.kernel);
  const double bias = options_.bias == BiasTerm::Enabled ? outputs : 0;
  const double in = kFloatBytes * static_cast<double>(in_channels_ * in_height_ * in_width_);
  const double out = kFloatBytes * outputs;
  LayerWork w;
  w.bound = WorkBound::Arithmetic;
  w.forward_flops = product + bias;
  w.forward_bytes = in + out;
  w.backward_flops = product + bias;  // weight and bias gradients: reads x and dy
  w.backward_bytes = in + out;
  if (dx == InputGradient::Computed) {
    w.backward_flops += product;
    w.backward_bytes += in;
  }
  return w;
}

void Conv2dLayer::init_parameters(Rng& rng) {
  const size_t taps = options_.kernel * options_.kernel;
  Tensor* bias = options_.bias == BiasTerm::Enabled ? &params_.at(1) : nullptr;
  init_weight_and_bias(options_.init, {group_in_channels() * taps, options_.out_channels * taps}, params_.at(0), bias,
                       rng);
}

}  // namespace dptrain
