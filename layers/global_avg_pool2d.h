// GlobalAvgPool2dLayer: the mean of each channel's whole plane, PyTorch's AdaptiveAvgPool2d(1).
#pragma once

#include <cstddef>

#include "layers/layer.h"

namespace dptrain {

// Backend-independent part of global_avg_pool2d: input (C, H, W), output (C, 1, 1), as
// torchvision's ResNets have it before their flatten. No options.
class GlobalAvgPool2dLayer : public Layer {
 public:
  explicit GlobalAvgPool2dLayer(const Shape& input_shape);
  const char* type() const override { return "global_avg_pool2d"; }
  // Memory-bound. Forward sums each plane (one FLOP an input element); backward writes dy / (H * W)
  // over it (as many).
  LayerWork work(InputGradient dx) const override;

 protected:
  size_t channels_ = 0, height_ = 0, width_ = 0;  // input (C, H, W)
};

}  // namespace dptrain
