#include "layers/cuda/cuda_layers.h"

namespace dptrain {

void register_cuda_layers(LayerRegistry& registry) {
  registry.add("conv2d", DeviceKind::CUDA, make_cuda_conv2d);
  registry.add("dense", DeviceKind::CUDA, make_cuda_dense);
  registry.add("max_pool2d", DeviceKind::CUDA, make_cuda_max_pool2d);
  registry.add("avg_pool2d", DeviceKind::CUDA, make_cuda_avg_pool2d);
  registry.add("relu", DeviceKind::CUDA, make_cuda_relu);
  registry.add("flatten", DeviceKind::CUDA, make_cuda_flatten);
  registry.add("dropout", DeviceKind::CUDA, make_cuda_dropout);
  registry.add("softmax_cross_entropy", DeviceKind::CUDA, make_cuda_softmax_cross_entropy);
}

}  // namespace dptrain
