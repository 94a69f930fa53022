// The ONNX graph an export builds, and what one layer's emitter gets: the exporter's internals,
// shared by onnx_export.cpp (the graph around the layers) and onnx_layers.cpp (one emitter per type).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/tensor.h"

namespace dptrain::onnx_export {

// Appends nodes and initializers to a graph, naming them uniquely.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  // A float initializer `name` of `shape` holding values[0, num_elements(shape)); returns its name.
  std::string initializer(const std::string& name, const std::vector<int64_t>& shape, const float* values);
  // A float initializer of `shape` with every element `value`.
  std::string constant(const std::string& name, const std::vector<int64_t>& shape, float value);
  // A node `op` reading `inputs`, writing `outputs`; attributes are added to the returned node.
  onnx::NodeProto& node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs);

 private:
  onnx::GraphProto& graph_;
};

// Attribute helpers for a node.
void set_int(onnx::NodeProto& node, const std::string& name, int64_t value);
void set_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values);
void set_float(onnx::NodeProto& node, const std::string& name, float value);

// One layer as its emitter sees it.
struct LayerToEmit {
  const Layer& layer;
  const std::string& name;                  // the layer's name in the model, e.g. "layer1.0.conv1"
  std::vector<std::string> inputs;          // graph values it reads, one per layer input
  std::string output;                       // the graph value it must write
  std::map<std::string, const float*> params;   // parameter name ("weight") -> its values (host)
  std::map<std::string, const float*> buffers;  // buffer name ("running_mean") -> its values (host)

  // The parameter or buffer `key`, or UsageError naming the layer when it has none.
  const float* param(const std::string& key) const;
  const float* buffer(const std::string& key) const;
};

// Writes the nodes of one layer. The loss layer is not emitted through here.
using LayerEmitter = void (*)(const LayerToEmit& layer, GraphBuilder& graph);

// The emitter of layer type `type` ("conv2d"), or null when the type has no ONNX form.
LayerEmitter emitter_for(const std::string& type);
// The layer types that have one, for messages.
std::string exportable_types();

}  // namespace dptrain::onnx_export
