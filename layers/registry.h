// LayerRegistry: builds a layer from its YAML `type` for a backend.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// Makes one layer from its options (the YAML mapping, `type` included) and its input shape.
// A factory reads every option it knows from `options`; the registry rejects the rest.
using LayerFactory = std::function<std::unique_ptr<Layer>(ConfigMap& options, const Shape& input_shape)>;

// Maps (type, device) to a factory. `builtin()` holds every layer of every backend this build has.
class LayerRegistry {
 public:
  static const LayerRegistry& builtin();

  void add(const std::string& type, DeviceKind device, LayerFactory factory);
  // Builds the layer named by options["type"] for `device`. An unknown type is a ConfigError
  // naming the file, line and the known types; an unknown option is a ConfigError naming the key.
  std::unique_ptr<Layer> create(ConfigMap& options, const Shape& input_shape, DeviceKind device) const;
  // Every registered type, sorted.
  std::vector<std::string> types() const;

 private:
  std::map<std::pair<std::string, DeviceKind>, LayerFactory> factories_;
};

}  // namespace dptrain
