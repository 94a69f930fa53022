#include "layers/activation.h"

#include <cmath>
#include <string>

#include "runtime/core/errors.h"

namespace dptrain {

const char* to_string(ActivationFunction function) {
  switch (function) {
    case ActivationFunction::LeakyRelu:
      return "leaky_relu";
    case ActivationFunction::Sigmoid:
      return "sigmoid";
    case ActivationFunction::Tanh:
      return "tanh";
    case ActivationFunction::Silu:
      return "silu";
  }
  return "activation";
}

ActivationOptions ActivationOptions::read(ConfigMap& options, ActivationFunction function) {
  ActivationOptions o;
  o.function = function;
  if (function == ActivationFunction::LeakyRelu) {
    o.negative_slope = static_cast<float>(options.get_double_checked(
        "negative_slope", 0.01, [](double v) { return std::isfinite(v); }, "must be a finite number"));
  }
  return o;
}

ActivationLayer::ActivationLayer(const ActivationOptions& options, const Shape& input_shape) : options_(options) {
  if (input_shape.empty()) {
    throw ShapeError(std::string(to_string(options.function)) + " needs an input with at least one dimension");
  }
  input_shape_ = input_shape;
  output_shape_ = input_shape;
}

}  // namespace dptrain
