#include "layers/cpu/cpu_layers.h"

namespace dptrain {

void register_cpu_layers(LayerRegistry& registry) {
  (void)registry;  // layers are added here as they are written
}

}  // namespace dptrain
