// Conv2dLayer: 2-D convolution (cross-correlation, as in PyTorch and Keras) over NCHW batches.
#pragma once

#include <vector>

#include "layers/layer.h"
#include "layers/layer_util.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// YAML options of `conv2d`. in_channels is taken from the input shape.
struct Conv2dOptions {
  size_t out_channels = 0;                // `out_channels`, required, >= 1
  size_t kernel = 0;                      // `kernel`, required, >= 1: a square kernel x kernel window
  size_t stride = 1;                      // `stride`, >= 1
  size_t padding = 0;                     // `padding`: zeros added on every side
  size_t dilation = 1;                    // `dilation`, >= 1: spacing between kernel taps
  size_t groups = 1;                      // `groups`, >= 1, divides in_channels and out_channels
  BiasTerm bias = BiasTerm::Enabled;      // `bias`: true or false
  InitScheme init = InitScheme::PyTorch;  // `init`: how weight and bias start (see InitScheme)

  // Reads the options of a layer whose input is `input_shape`; a `groups` that does not divide
  // both channel counts is a ConfigError naming that key.
  static Conv2dOptions read(ConfigMap& options, const Shape& input_shape);
};

// Backend-independent part of conv2d: shapes, parameters and their initialisation, as PyTorch's
// nn.Conv2d. Input (C, H, W), output (out_channels, Ho, Wo) with
// Ho = (H + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1. Input channel group g
// (C / groups of them) feeds output channel group g only.
// Parameters: "weight" (out_channels, C / groups, kernel, kernel) and, with bias, "bias" (out_channels).
class Conv2dLayer : public Layer {
 public:
  Conv2dLayer(const Conv2dOptions& options, const Shape& input_shape);

  const char* type() const override { return "conv2d"; }
  std::vector<ParamSpec> parameters() const override;
  // Weight and bias by options().init with fan_in = C / groups * kernel^2 and
  // fan_out = out_channels * kernel^2.
  void init_parameters(Rng& rng) override;
  // Arithmetic-bound. Forward: 2 * Cout * Ho * Wo * (C / groups) * kernel^2 FLOPs (taps over
  // padding included, as the GEMM computes them) plus Cout * Ho * Wo bias adds. Backward: the
  // weight gradient (as many FLOPs as forward's product) and the bias gradient, plus the data
  // gradient (as many again) when dx is Computed.
  LayerWork work(InputGradient dx) const override;

  const Conv2dOptions& options() const { return options_; }
  // Input channels per group, C / groups.
  size_t group_in_channels() const { return in_channels_ / options_.groups; }
  // Output channels per group, out_channels / groups.
  size_t group_out_channels() const { return options_.out_channels / options_.groups; }

 protected:
  Conv2dOptions options_;
  size_t in_channels_ = 0, in_height_ = 0, in_width_ = 0;
  size_t out_height_ = 0, out_width_ = 0;
};

}  // namespace dptrain
