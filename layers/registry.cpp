#include "layers/registry.h"

#include <set>

#include "layers/cpu/cpu_layers.h"
#include "runtime/core/errors.h"

#ifdef DPTRAIN_HAVE_CUDA
#include "layers/cuda/cuda_layers.h"
#endif

namespace dptrain {

const LayerRegistry& LayerRegistry::builtin() {
  static const LayerRegistry registry = [] {
    LayerRegistry r;
    register_cpu_layers(r);
#ifdef DPTRAIN_HAVE_CUDA
    register_cuda_layers(r);
#endif
    return r;
  }();
  return registry;
}

void LayerRegistry::add(const std::string& type, DeviceKind device, LayerFactory factory) {
  factories_[{type, device}] = std::move(factory);
}

std::vector<std::string> LayerRegistry::types() const {
  std::set<std::string> names;
  for (const auto& entry : factories_) names.insert(entry.first.first);
  return {names.begin(), names.end()};
}

std::unique_ptr<Layer> LayerRegistry::create(ConfigMap& options, const Shape& input_shape, DeviceKind device) const {
  const std::string type = options.get_string("type");
  auto it = factories_.find({type, device});
  if (it == factories_.end()) {
    std::string known;
    for (const auto& name : types()) known += (known.empty() ? "" : ", ") + name;
    bool other_device = false;
    for (const auto& entry : factories_) other_device |= entry.first.first == type;
    if (other_device) {
      options.fail("type", "layer type '" + type + "' has no " + to_string(device) + " implementation");
    }
    options.fail("type", "unknown layer type '" + type + "' (known types: " + known + ")");
  }
  std::unique_ptr<Layer> layer;
  try {
    layer = it->second(options, input_shape);
  } catch (const ShapeError& e) {
    options.fail("type", std::string("layer '") + type + "' cannot take input of shape " + to_string(input_shape) +
                             ": " + e.what());
  }
  options.finish();
  return layer;
}

}  // namespace dptrain
