// Factories of the CPU layer implementations, and their registration.
#pragma once

#include <memory>

#include "layers/registry.h"

namespace dptrain {

// Adds every CPU layer to `registry`.
void register_cpu_layers(LayerRegistry& registry);

// One factory per layer type (see LayerFactory): each reads its options and checks the input shape.
std::unique_ptr<Layer> make_cpu_conv2d(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_dense(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_max_pool2d(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_avg_pool2d(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_relu(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_flatten(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_dropout(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cpu_softmax_cross_entropy(ConfigMap& options, const Shape& input_shape, Backend& backend);

}  // namespace dptrain
