// Conv2dLayer: 2-D convolution (cross-correlation, as in PyTorch and Keras) over NCHW batches.
#pragma once

#include <vector>

#include "layers/layer.h"
#include "layers/layer_util.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// YAML options of `conv2d`. in_channels is taken from the input shape.
struct Conv2dOptions {
  size_t out_channels = 0;            // `out_channels`, required, >= 1
  size_t kernel = 0;                  // `kernel`, required, >= 1: a square kernel x kernel window
  size_t stride = 1;                  // `stride`, >= 1
  size_t padding = 0;                 // `padding`: zeros added on every side
  BiasTerm bias = BiasTerm::Enabled;  // `bias`: true or false

  static Conv2dOptions read(ConfigMap& options);
};

// Backend-independent part of conv2d: shapes, parameters and their initialisation.
// Input (C, H, W), output (out_channels, Ho, Wo) with Ho = (H + 2 * padding - kernel) / stride + 1.
// Parameters: "weight" (out_channels, C, kernel, kernel) and, with bias, "bias" (out_channels).
class Conv2dLayer : public Layer {
 public:
  Conv2dLayer(const Conv2dOptions& options, const Shape& input_shape);

  const char* type() const override { return "conv2d"; }
  std::vector<ParamSpec> parameters() const override;
  // He (Kaiming) uniform weights U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)), fan_in = C * kernel^2;
  // zero bias.
  void init_parameters(Rng& rng) override;

  const Conv2dOptions& options() const { return options_; }

 protected:
  Conv2dOptions options_;
  size_t in_channels_ = 0, in_height_ = 0, in_width_ = 0;
  size_t out_height_ = 0, out_width_ = 0;
};

}  // namespace dptrain
