// MaxPool2dLayer: the maximum of each kernel x kernel window; padding counts as -infinity.
#pragma once

#include "layers/pool2d.h"

namespace dptrain {

// Backend-independent part of max_pool2d (options and shapes: see Pool2dLayer). Backward sends
// each output gradient to the input element that was the window's maximum (the first one on ties).
class MaxPool2dLayer : public Pool2dLayer {
 public:
  MaxPool2dLayer(const Pool2dOptions& options, const Shape& input_shape)
      : Pool2dLayer(options, input_shape, "max_pool2d") {}
  const char* type() const override { return "max_pool2d"; }
};

}  // namespace dptrain
