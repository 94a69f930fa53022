// ONNX export: the graph around the layers (input, outputs, softmax), the checker, and the file.
#include "runtime/export/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "runtime/core/errors.h"
#include "runtime/export/onnx_graph.h"
#include "runtime/train/model.h"

namespace dptrain {

namespace onnx_export {

std::string GraphBuilder::initializer(const std::string& name, const std::vector<int64_t>& shape,
                                      const float* values) {
  onnx::TensorProto& t = *graph_.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  int64_t count = 1;
  for (const int64_t d : shape) {
    t.add_dims(d);
    count *= d;
  }
  // Little-endian raw bytes, as the format stores them (x86-64 and AArch64 are little-endian).
  t.set_raw_data(values, static_cast<size_t>(count) * sizeof(float));
  return name;
}

std::string GraphBuilder::constant(const std::string& name, const std::vector<int64_t>& shape, float value) {
  int64_t count = 1;
  for (const int64_t d : shape) count *= d;
  const std::vector<float> values(static_cast<size_t>(count), value);
  return initializer(name, shape, values.data());
}

onnx::NodeProto& GraphBuilder::node(const std::string& op, const std::string& name,
                                    const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
  onnx::NodeProto& n = *graph_.add_node();
  n.set_op_type(op);
  n.set_name(name);
  for (const auto& in : inputs) n.add_input(in);
  for (const auto& out : outputs) n.add_output(out);
  return n;
}

void set_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
}

void set_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (const int64_t v : values) a.add_ints(v);
}

void set_float(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
}

const float* LayerToEmit::param(const std::string& key) const {
  const auto it = params.find(key);
  if (it == params.end()) throw UsageError("onnx export: layer " + name + " has no parameter " + key);
  return it->second;
}

const float* LayerToEmit::buffer(const std::string& key) const {
  const auto it = buffers.find(key);
  if (it == buffers.end()) throw UsageError("onnx export: layer " + name + " has no buffer " + key);
  return it->second;
}

namespace {

// A float tensor value (batch, ...shape) with a symbolic batch dimension.
void describe_value(onnx::ValueInfoProto& value, const std::string& name, const Shape& per_sample) {
  value.set_name(name);
  onnx::TypeProto_Tensor& tensor = *value.mutable_type()->mutable_tensor_type();
  tensor.set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto& shape = *tensor.mutable_shape();
  shape.add_dim()->set_dim_param("batch");
  for (const size_t d : per_sample) shape.add_dim()->set_dim_value(static_cast<int64_t>(d));
}

// Each layer's parameters (or buffers) by name, pointing into the host copy of the flat buffer.
std::vector<std::map<std::string, const float*>> by_layer(const std::vector<ParamEntry>& entries, const Tensor& flat,
                                                          size_t layers) {
  std::vector<std::map<std::string, const float*>> out(layers);
  for (const ParamEntry& e : entries) out.at(e.layer)[e.param] = flat.data() + e.offset;
  return out;
}

}  // namespace

}  // namespace onnx_export

onnx::ModelProto to_onnx(const Model& model, const Tensor& parameters, const Tensor& buffers,
                         const OnnxExportOptions& options) {
  using namespace onnx_export;
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("dptrain");
  proto.set_producer_version(DPTRAIN_VERSION);
  onnx::OperatorSetIdProto& opset = *proto.add_opset_import();
  opset.set_domain("");
  opset.set_version(options.opset);
  for (const auto& [key, value] : options.metadata) {
    onnx::StringStringEntryProto& entry = *proto.add_metadata_props();
    entry.set_key(key);
    entry.set_value(value);
  }
  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name(options.graph_name);
  describe_value(*graph.add_input(), kOnnxInput, model.input_shape());

  const auto& layers = model.layers();
  const auto params = by_layer(model.parameter_entries(), parameters, layers.size());
  const auto state = by_layer(model.buffer_entries(), buffers, layers.size());
  auto value_of = [&](size_t j) { return j == kModelInput ? std::string(kOnnxInput) : model.layer_name(j); };
  GraphBuilder builder(graph);
  const size_t last = layers.size() - 1;  // the loss layer
  for (size_t i = 0; i < last; ++i) {
    const Layer& layer = *layers[i];
    const LayerEmitter emit = emitter_for(layer.type());
    if (!emit) {
      throw UsageError("onnx export: layer " + model.layer_name(i) + " (type " + layer.type() +
                       ") has no ONNX form; the types that have one: " + exportable_types());
    }
    LayerToEmit l{layer, model.layer_name(i), {}, model.layer_name(i), params[i], state[i]};
    for (const size_t j : model.layer_inputs(i)) l.inputs.push_back(value_of(j));
    emit(l, builder);
  }
  // The loss layer's input are the logits; evaluation turns them into class probabilities.
  const std::string logits_from = value_of(model.layer_inputs(last).at(0));
  builder.node("Identity", kOnnxLogits, {logits_from}, {kOnnxLogits});
  set_int(builder.node("Softmax", kOnnxProbabilities, {logits_from}, {kOnnxProbabilities}), "axis", 1);
  describe_value(*graph.add_output(), kOnnxLogits, {model.num_classes()});
  describe_value(*graph.add_output(), kOnnxProbabilities, {model.num_classes()});
  return proto;
}

void write_onnx(const onnx::ModelProto& model, const std::string& path) {
  onnx::ModelProto checked = model;
  try {
    onnx::checker::check_model(checked);
    onnx::shape_inference::InferShapes(checked);
  } catch (const std::exception& e) {
    throw UsageError("onnx export: the ONNX checker refuses the exported model: " + std::string(e.what()));
  }
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out || !model.SerializeToOstream(&out) || !out.flush()) {
      const std::string why = std::strerror(errno);
      std::remove(temp.c_str());
      throw UsageError(path + ": cannot write the ONNX file (" + why + "); check that its folder exists and is writable");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(temp.c_str());
    throw UsageError(path + ": cannot replace it with the exported model (" + why + ")");
  }
}

}  // namespace dptrain
