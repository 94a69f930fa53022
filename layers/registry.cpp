#include "layers/registry.h"

#include <set>

#include "runtime/core/errors.h"

namespace dptrain {

LayerRegistry& LayerRegistry::builtin() {
  // Built on first use, so registrars in files initialised before this one find it ready.
  static LayerRegistry registry;
  return registry;
}

LayerRegistrar::LayerRegistrar(const char* type, const char* backend, LayerFactory factory) {
  LayerRegistry::builtin().add(type, backend, std::move(factory));
}

void LayerRegistry::add(const std::string& type, const std::string& backend, LayerFactory factory) {
  factories_[{type, backend}] = std::move(factory);
}

const LayerFactory* LayerRegistry::find(const std::string& type, const std::string& backend) const {
  auto it = factories_.find({type, backend});
  if (it == factories_.end()) it = factories_.find({type, kAnyBackend});
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> LayerRegistry::types(const std::string& backend) const {
  std::set<std::string> names;
  for (const auto& entry : factories_) {
    if (entry.first.second == backend || entry.first.second == kAnyBackend) names.insert(entry.first.first);
  }
  return {names.begin(), names.end()};
}

std::unique_ptr<Layer> LayerRegistry::create(ConfigMap& options, const Shape& input_shape, Backend& backend) const {
  const std::string type = options.get_string("type");
  const LayerFactory* factory = find(type, backend.name());
  if (!factory) {
    for (const auto& entry : factories_) {
      if (entry.first.first == type) {
        options.fail("type", "layer type '" + type + "' has no " + backend.name() + " implementation");
      }
    }
    std::string known;
    for (const auto& name : types(backend.name())) known += (known.empty() ? "" : ", ") + name;
    options.fail("type", "unknown layer type '" + type + "' (known types: " + known + ")");
  }
  std::unique_ptr<Layer> layer;
  try {
    layer = (*factory)(options, input_shape, backend);
  } catch (const ShapeError& e) {
    options.fail("type", std::string("layer '") + type + "' cannot take input of shape " + to_string(input_shape) +
                             ": " + e.what());
  }
  options.finish();
  return layer;
}

}  // namespace dptrain
