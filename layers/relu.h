// ReluLayer: y = max(x, 0) element-wise, any input shape.
#pragma once

#include "layers/layer.h"

namespace dptrain {

// Backend-independent part of relu: output shape = input shape. The gradient at x == 0 is 0.
class ReluLayer : public Layer {
 public:
  explicit ReluLayer(const Shape& input_shape);
  const char* type() const override { return "relu"; }
};

}  // namespace dptrain
