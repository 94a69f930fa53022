// FlattenLayer: (d1, d2, ...) per sample -> (d1 * d2 * ...), element order unchanged.
#pragma once

#include "layers/layer.h"

namespace dptrain {

// Backend-independent part of flatten: input of any shape, output (its element count).
class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(const Shape& input_shape);
  const char* type() const override { return "flatten"; }
};

}  // namespace dptrain
