#include "layers/pool2d.h"

#include "layers/avg_pool2d.h"
#include "layers/layer_util.h"
#include "runtime/core/errors.h"

namespace dptrain {

Pool2dOptions Pool2dOptions::read(ConfigMap& options) {
  Pool2dOptions o;
  o.kernel = read_positive(options, "kernel");
  o.stride = read_positive(options, "stride", o.kernel);
  o.padding = options.get_count("padding", 0, CountRange{0, kMaxLayerSize, ""});
  if (2 * o.padding > o.kernel) {
    options.fail("padding", "must be at most half the kernel (" + std::to_string(o.kernel / 2) + "), got " +
                                std::to_string(o.padding));
  }
  return o;
}

Pool2dLayer::Pool2dLayer(const Pool2dOptions& options, const Shape& input_shape, const char* type_name)
    : options_(options) {
  if (input_shape.size() != 3) {
    throw ShapeError(std::string(type_name) + " needs a (channels, height, width) input, got " +
                     to_string(input_shape));
  }
  channels_ = input_shape[0];
  in_height_ = input_shape[1];
  in_width_ = input_shape[2];
  out_height_ = window_output_size(in_height_, options_.kernel, options_.stride, options_.padding, "height");
  out_width_ = window_output_size(in_width_, options_.kernel, options_.stride, options_.padding, "width");
  input_shape_ = input_shape;
  output_shape_ = {channels_, out_height_, out_width_};
}

LayerWork AvgPool2dLayer::work(InputGradient dx) const {
  LayerWork w = Layer::work(dx);
  const double window_flops =
      static_cast<double>(channels_ * out_height_ * out_width_ * options_.kernel * options_.kernel);
  w.forward_flops = window_flops;
  w.backward_flops = dx == InputGradient::Computed ? window_flops : 0;
  return w;
}

}  // namespace dptrain
