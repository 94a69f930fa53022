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

MergeLayerRegistrar::MergeLayerRegistrar(const char* type, const char* backend, MergeLayerFactory factory) {
  LayerRegistry::builtin().add_merge(type, backend, std::move(factory));
}

void LayerRegistry::add(const std::string& type, const std::string& backend, LayerFactory factory) {
  factories_[{type, backend}] = [type, single = std::move(factory)](ConfigMap& options, const std::vector<Shape>& inputs,
                                                                   Backend& on) {
    if (inputs.size() != 1) {
      options.fail("inputs", "layer type '" + type + "' takes one input, got " + std::to_string(inputs.size()) +
                                 " (merge branches with an add or concat layer first)");
    }
    return single(options, inputs[0], on);
  };
}

void LayerRegistry::add_merge(const std::string& type, const std::string& backend, MergeLayerFactory factory) {
  factories_[{type, backend}] = std::move(factory);
}

const LayerRegistry::AnyFactory* LayerRegistry::find(const std::string& type, const std::string& backend) const {
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

std::unique_ptr<Layer> LayerRegistry::create_from_inputs(ConfigMap& options, const std::vector<Shape>& input_shapes,
                                                         Backend& backend) const {
  const std::string type = options.get_string("type");
  const AnyFactory* factory = find(type, backend.name());
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
    layer = (*factory)(options, input_shapes, backend);
  } catch (const ShapeError& e) {
    std::string shapes;
    for (const Shape& shape : input_shapes) shapes += (shapes.empty() ? "" : " and ") + to_string(shape);
    options.fail("type", std::string("layer '") + type + "' cannot take input of shape " + shapes + ": " + e.what());
  }
  options.finish();
  return layer;
}

}  // namespace dptrain
