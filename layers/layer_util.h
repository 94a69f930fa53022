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

// Reads `key` as an integer >= 1 (required when `fallback` is empty).
size_t read_positive(ConfigMap& options, const std::string& key, std::optional<size_t> fallback = std::nullopt);

// Output length of a sliding window along one axis (floor mode, as PyTorch's default):
// (in + 2 * padding - kernel) / stride + 1. Throws ShapeError when the window does not fit.
size_t window_output_size(size_t in, size_t kernel, size_t stride, size_t padding, const char* axis);

// Fills `weight` with He (Kaiming) uniform values U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)) from `rng`.
void init_he_uniform(Tensor& weight, size_t fan_in, Rng& rng);

// Checks that x is (N, ...input_shape) and y is (N, ...output_shape); returns N.
size_t check_forward_shapes(const Layer& layer, const Tensor& x, const Tensor& y);

// As check_forward_shapes, and that dy matches y and dx (when given) matches x; returns N.
size_t check_backward_shapes(const Layer& layer, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx);

// to = from (same element count, both `backend`'s memory) through the backend, unless they are
// the same memory: the pass-through of flatten, of dropout in evaluation and of a loss layer.
void copy_unless_shared(Backend& backend, const Tensor& from, Tensor& to);

}  // namespace dptrain
