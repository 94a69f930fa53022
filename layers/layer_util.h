// Helpers shared by layer declarations on every backend: option reading and shape checks.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "layers/layer.h"
#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// Whether a conv2d or dense layer adds a learned per-output bias.
enum class BiasTerm { Enabled, Disabled };

// Reads the optional `bias` key (true or false, default true).
BiasTerm read_bias(ConfigMap& options);

// The largest size (units, channels, kernel, stride, padding) a layer option takes: larger is a typing mistake.
constexpr size_t kMaxLayerSize = size_t{1} << 24;

// Reads `key` as an integer in [1, kMaxLayerSize] (required when `fallback` is empty).
size_t read_positive(ConfigMap& options, const std::string& key, std::optional<size_t> fallback = std::nullopt);

// Output length of a sliding window along one axis (floor mode, as PyTorch's default):
// (in + 2 * padding - kernel) / stride + 1. Throws ShapeError when the window does not fit.
size_t window_output_size(size_t in, size_t kernel, size_t stride, size_t padding, const char* axis);

// How a conv2d or dense layer draws its initial weights and bias (PyTorch's names and formulas).
enum class InitScheme {
  PyTorch,        // nn.Conv2d / nn.Linear default: weight and bias U(+-1/sqrt(fan_in))
  HeUniform,      // weight U(+-sqrt(6 / fan_in)), bias 0
  HeNormal,       // weight N(0, 2 / fan_in), bias 0
  XavierUniform,  // weight U(+-sqrt(6 / (fan_in + fan_out))), bias 0
  XavierNormal,   // weight N(0, 2 / (fan_in + fan_out)), bias 0
};

// Reads the optional `init` key: pytorch (the default), he_uniform, he_normal, xavier_uniform or
// xavier_normal.
InitScheme read_init(ConfigMap& options);

// The YAML name of a scheme, e.g. "he_uniform".
const char* to_string(InitScheme scheme);

// Fan sizes of a weight tensor as PyTorch computes them: for a conv weight (Cout, Cin / groups, K, K)
// fan_in = Cin / groups * K * K and fan_out = Cout * K * K; for a dense weight (units, F) fan_in = F
// and fan_out = units.
struct Fans {
  size_t in = 0;
  size_t out = 0;
};

// Fills `weight` (and `bias` unless null) by `scheme`, drawing only from `rng`: the weights first,
// in order, then the bias, so a layer's initial values depend on its key alone.
void init_weight_and_bias(InitScheme scheme, const Fans& fans, Tensor& weight, Tensor* bias, Rng& rng);

// Checks that x is (N, ...input_shape) and y is (N, ...output_shape); returns N.
size_t check_forward_shapes(const Layer& layer, const Tensor& x, const Tensor& y);

// As check_forward_shapes, and that dy matches y and dx (when given) matches x; returns N.
size_t check_backward_shapes(const Layer& layer, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx);

// to = from (same element count and type, both `backend`'s memory) through the backend, unless they are
// the same memory: the pass-through of flatten, of dropout in evaluation and of a loss layer.
void copy_unless_shared(Backend& backend, const Tensor& from, Tensor& to);

}  // namespace dptrain
