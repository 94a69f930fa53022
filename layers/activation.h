// ActivationLayer: the element-wise activations leaky_relu, sigmoid, tanh and silu (relu has its
// own layer), any input shape, with PyTorch's formulas and gradients.
#pragma once

#include "layers/layer.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// Which element-wise function an ActivationLayer computes; each is its own YAML `type`.
enum class ActivationFunction {
  LeakyRelu,  // `leaky_relu`: x > 0 ? x : negative_slope * x; gradient negative_slope at x <= 0
  Sigmoid,    // `sigmoid`: 1 / (1 + exp(-x))
  Tanh,       // `tanh`
  Silu,       // `silu`: x * sigmoid(x)
};

// The YAML `type` of a function, e.g. "leaky_relu".
const char* to_string(ActivationFunction function);

// YAML options of an activation layer; only leaky_relu has any.
struct ActivationOptions {
  ActivationFunction function = ActivationFunction::Sigmoid;
  float negative_slope = 0.01f;  // `negative_slope` of leaky_relu (PyTorch's default 0.01)

  // Reads the options `function` takes; the registry rejects any other key.
  static ActivationOptions read(ConfigMap& options, ActivationFunction function);
};

// Backend-independent part of the element-wise activations: output shape = input shape.
class ActivationLayer : public Layer {
 public:
  ActivationLayer(const ActivationOptions& options, const Shape& input_shape);
  const char* type() const override { return to_string(options_.function); }

  const ActivationOptions& options() const { return options_; }

 protected:
  ActivationOptions options_;
};

}  // namespace dptrain
