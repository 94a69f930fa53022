#include "layers/cuda/cuda_layers.h"

namespace dptrain {

void register_cuda_layers(LayerRegistry& registry) {
  registry.add("conv2d", "cuda", make_cuda_conv2d);
  registry.add("dense", "cuda", make_cuda_dense);
  registry.add("max_pool2d", "cuda", make_cuda_max_pool2d);
  registry.add("avg_pool2d", "cuda", make_cuda_avg_pool2d);
  registry.add("relu", "cuda", make_cuda_relu);
  registry.add("flatten", "cuda", make_cuda_flatten);
  registry.add("dropout", "cuda", make_cuda_dropout);
  registry.add("softmax_cross_entropy", "cuda", make_cuda_softmax_cross_entropy);
}

}  // namespace dptrain
