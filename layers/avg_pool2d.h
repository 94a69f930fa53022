// AvgPool2dLayer: the mean of each kernel x kernel window.
#pragma once

#include "layers/pool2d.h"

namespace dptrain {

// Backend-independent part of avg_pool2d (options and shapes: see Pool2dLayer). Padding is never
// averaged in: each window is divided by the number of its elements inside the input (PyTorch's
// count_include_pad=False, Keras' padding='same'). Without padding this is the plain mean.
class AvgPool2dLayer : public Pool2dLayer {
 public:
  AvgPool2dLayer(const Pool2dOptions& options, const Shape& input_shape)
      : Pool2dLayer(options, input_shape, "avg_pool2d") {}
  const char* type() const override { return "avg_pool2d"; }
  // Memory-bound. Forward sums each window and scales it (kernel^2 FLOPs an output, windows clipped
  // at the border counted whole); backward spreads each scaled dy over its window (as many).
  LayerWork work(InputGradient dx) const override;
};

}  // namespace dptrain
