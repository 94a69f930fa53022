// Factories of the CUDA layer implementations, and their registration.
#pragma once

#include <memory>

#include "layers/registry.h"

namespace dptrain {

// Adds every CUDA layer to `registry` (called by LayerRegistry::builtin() in CUDA builds).
void register_cuda_layers(LayerRegistry& registry);

// One factory per layer type (see LayerFactory). `backend` must be the CUDA backend: each layer
// keeps its CudaContext and runs on its compute stream; their tensors are device memory.
std::unique_ptr<Layer> make_cuda_conv2d(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_dense(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_max_pool2d(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_avg_pool2d(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_relu(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_flatten(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_dropout(ConfigMap& options, const Shape& input_shape, Backend& backend);
std::unique_ptr<Layer> make_cuda_softmax_cross_entropy(ConfigMap& options, const Shape& input_shape, Backend& backend);

}  // namespace dptrain
