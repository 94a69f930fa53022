#include "layers/dense.h"

#include "runtime/core/errors.h"

namespace dptrain {

DenseOptions DenseOptions::read(ConfigMap& options) {
  DenseOptions o;
  o.units = read_positive(options, "units");
  o.bias = read_bias(options);
  o.init = read_init(options);
  return o;
}

DenseLayer::DenseLayer(const DenseOptions& options, const Shape& input_shape) : options_(options) {
  if (input_shape.empty()) throw ShapeError("dense needs an input with at least one dimension");
  in_features_ = num_elements(input_shape);
  if (in_features_ == 0) throw ShapeError("dense input " + to_string(input_shape) + " has no elements");
  input_shape_ = input_shape;
  output_shape_ = {options_.units};
}

std::vector<ParamSpec> DenseLayer::parameters() const {
  std::vector<ParamSpec> specs{{"weight", {options_.units, in_features_}}};
  if (options_.bias == BiasTerm::Enabled) specs.push_back({"bias", {options_.units}});
  return specs;
}

LayerWork DenseLayer::work(InputGradient dx) const {
  const double units = static_cast<double>(options_.units);
  const double product = 2 * units * static_cast<double>(in_features_);
  const double bias = options_.bias == BiasTerm::Enabled ? units : 0;
  const double in = kFloatBytes * static_cast<double>(in_features_);
  const double out = kFloatBytes * units;
  LayerWork w;
  w.bound = WorkBound::Arithmetic;
  w.forward_flops = product + bias;
  w.forward_bytes = in + out;
  w.backward_flops = product + bias;
  w.backward_bytes = in + out;
  if (dx == InputGradient::Computed) {
    w.backward_flops += product;
    w.backward_bytes += in;
  }
  return w;
}

void DenseLayer::init_parameters(Rng& rng) {
  Tensor* bias = options_.bias == BiasTerm::Enabled ? &params_.at(1) : nullptr;
  init_weight_and_bias(options_.init, {in_features_, options_.units}, params_.at(0), bias, rng);
}

}  // namespace dptrain
