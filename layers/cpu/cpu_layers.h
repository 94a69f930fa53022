// Factories of the CPU layer implementations, and their registration.
#pragma once

#include "layers/registry.h"

namespace dptrain {

// Adds every CPU layer to `registry`.
void register_cpu_layers(LayerRegistry& registry);

}  // namespace dptrain
