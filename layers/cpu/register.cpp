#include "layers/cpu/cpu_layers.h"

namespace dptrain {

void register_cpu_layers(LayerRegistry& registry) {
  registry.add("conv2d", "cpu", make_cpu_conv2d);
  registry.add("dense", "cpu", make_cpu_dense);
  registry.add("max_pool2d", "cpu", make_cpu_max_pool2d);
  registry.add("avg_pool2d", "cpu", make_cpu_avg_pool2d);
  registry.add("relu", "cpu", make_cpu_relu);
  registry.add("flatten", "cpu", make_cpu_flatten);
  registry.add("dropout", "cpu", make_cpu_dropout);
  registry.add("softmax_cross_entropy", "cpu", make_cpu_softmax_cross_entropy);
}

}  // namespace dptrain
