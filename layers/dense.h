// DenseLayer: fully connected layer y = x W^T + b over inputs flattened per sample.
#pragma once

#include <vector>

#include "layers/layer.h"
#include "layers/layer_util.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// YAML options of `dense`. in_features is the element count of the input shape.
struct DenseOptions {
  size_t units = 0;                       // `units`, required, >= 1: output features
  BiasTerm bias = BiasTerm::Enabled;      // `bias`: true or false
  InitScheme init = InitScheme::PyTorch;  // `init`: how weight and bias start (see InitScheme)

  static DenseOptions read(ConfigMap& options);
};

// Backend-independent part of dense. Input of any shape, read as F = its element count;
// output (units). Parameters: "weight" (units, F) and, with bias, "bias" (units).
class DenseLayer : public Layer {
 public:
  DenseLayer(const DenseOptions& options, const Shape& input_shape);

  const char* type() const override { return "dense"; }
  std::vector<ParamSpec> parameters() const override;
  // Weight and bias by options().init with fan_in = F, fan_out = units.
  void init_parameters(Rng& rng) override;
  // Arithmetic-bound. Forward: 2 * units * F FLOPs plus units bias adds; backward: the weight
  // gradient (2 * units * F) and bias gradient (units), plus the data gradient (2 * units * F) when
  // dx is Computed.
  LayerWork work(InputGradient dx) const override;

  const DenseOptions& options() const { return options_; }
  size_t in_features() const { return in_features_; }

 protected:
  DenseOptions options_;
  size_t in_features_ = 0;
};

}  // namespace dptrain
