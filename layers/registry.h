// LayerRegistry: builds a layer from its YAML `type` for a backend. Every layer file registers its
// own implementation with DPTRAIN_REGISTER_LAYER (as Caffe's REGISTER_LAYER_CLASS), so adding a
// layer means its header, its CPU file, its CUDA file and its tests.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// Makes one layer from its options (the YAML mapping, `type` included), its input shape and the
// backend it runs on. A factory reads every option it knows from `options`; the registry rejects
// the rest.
using LayerFactory =
    std::function<std::unique_ptr<Layer>(ConfigMap& options, const Shape& input_shape, Backend& backend)>;
// Makes a merge layer (add, concat) from its options and the per-sample shapes of its inputs.
using MergeLayerFactory =
    std::function<std::unique_ptr<Layer>(ConfigMap& options, const std::vector<Shape>& input_shapes, Backend& backend)>;

// The backend name under which a layer written once for every backend (through the Backend
// interface alone) registers.
inline constexpr const char* kAnyBackend = "any";

// Maps (type, backend name) to a factory. `builtin()` holds every layer of every backend this
// build has, each added by its own file before main() runs.
class LayerRegistry {
 public:
  static LayerRegistry& builtin();

  // `backend`: a backend name ("cpu", "cuda"), or kAnyBackend.
  void add(const std::string& type, const std::string& backend, LayerFactory factory);
  void add_merge(const std::string& type, const std::string& backend, MergeLayerFactory factory);
  // Takes a factory out again (a test that adds a layer type of its own removes it when it ends).
  void remove(const std::string& type, const std::string& backend) { factories_.erase({type, backend}); }
  // Builds the layer named by options["type"] for `backend` from its inputs' per-sample shapes. An
  // unknown type is a ConfigError naming the file, line and the types `backend` knows; an unknown
  // option is a ConfigError naming the key; more than one input for a single-input layer, or
  // inputs a merge layer cannot merge, a ConfigError about `inputs`.
  std::unique_ptr<Layer> create_from_inputs(ConfigMap& options, const std::vector<Shape>& input_shapes,
                                            Backend& backend) const;
  // The same for a layer of one input.
  std::unique_ptr<Layer> create(ConfigMap& options, const Shape& input_shape, Backend& backend) const {
    return create_from_inputs(options, std::vector<Shape>{input_shape}, backend);
  }
  // Every type that the backend named `backend` can build, sorted.
  std::vector<std::string> types(const std::string& backend) const;

 private:
  // Every factory takes the inputs' shapes; a single-input one is wrapped to check there is one.
  using AnyFactory = MergeLayerFactory;
  // The factory of `type` for `backend` (its own, else kAnyBackend's), or null.
  const AnyFactory* find(const std::string& type, const std::string& backend) const;

  std::map<std::pair<std::string, std::string>, AnyFactory> factories_;  // by (type, backend name)
};

// Adds a factory to LayerRegistry::builtin() when the program starts (see DPTRAIN_REGISTER_LAYER).
class LayerRegistrar {
 public:
  LayerRegistrar(const char* type, const char* backend, LayerFactory factory);
};

// Adds a merge layer's factory to LayerRegistry::builtin() (see DPTRAIN_REGISTER_MERGE_LAYER).
class MergeLayerRegistrar {
 public:
  MergeLayerRegistrar(const char* type, const char* backend, MergeLayerFactory factory);
};

}  // namespace dptrain

// Registers `factory` (a LayerFactory) as layer `type` of backend `backend` (cpu, cuda, or any for
// a layer written once against the Backend interface), at namespace scope in the layer's own file:
//   DPTRAIN_REGISTER_LAYER(relu, cpu, make_cpu_relu);
// The layers part is linked whole-archive (cmake/parts.cmake), so no registration is dropped.
#define DPTRAIN_REGISTER_LAYER(type, backend, factory) \
  static const ::dptrain::LayerRegistrar dptrain_layer_registrar_##type##_##backend(#type, #backend, factory)
// The same for a layer of several inputs, whose factory is a MergeLayerFactory.
#define DPTRAIN_REGISTER_MERGE_LAYER(type, backend, factory) \
  static const ::dptrain::MergeLayerRegistrar dptrain_layer_registrar_##type##_##backend(#type, #backend, factory)
