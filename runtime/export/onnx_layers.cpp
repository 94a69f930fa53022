// One ONNX emitter per layer type: the operators of ai.onnx opset 13 that compute what the layer's
// evaluation forward pass computes.
#include <functional>
#include <sstream>

#include "layers/activation.h"
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/pool2d.h"
#include "runtime/core/errors.h"
#include "runtime/export/onnx_graph.h"

namespace dptrain::onnx_export {

namespace {

int64_t as_int(size_t value) { return static_cast<int64_t>(value); }

// The layer as its concrete type; the registry built it from the same type name, so this holds.
template <typename T>
const T& as(const LayerToEmit& l) {
  return dynamic_cast<const T&>(l.layer);
}

void emit_conv2d(const LayerToEmit& l, GraphBuilder& g) {
  const Conv2dOptions& o = as<Conv2dLayer>(l).options();
  const size_t in_channels = l.layer.input_shape().at(0);
  std::vector<std::string> inputs{
      l.inputs[0], g.initializer(l.name + ".weight",
                                 {as_int(o.out_channels), as_int(in_channels / o.groups), as_int(o.kernel),
                                  as_int(o.kernel)},
                                 l.param("weight"))};
  if (o.bias == BiasTerm::Enabled) inputs.push_back(g.initializer(l.name + ".bias", {as_int(o.out_channels)}, l.param("bias")));
  onnx::NodeProto& node = g.node("Conv", l.name, inputs, {l.output});
  set_ints(node, "kernel_shape", {as_int(o.kernel), as_int(o.kernel)});
  set_ints(node, "strides", {as_int(o.stride), as_int(o.stride)});
  set_ints(node, "pads", {as_int(o.padding), as_int(o.padding), as_int(o.padding), as_int(o.padding)});
  set_ints(node, "dilations", {as_int(o.dilation), as_int(o.dilation)});
  set_int(node, "group", as_int(o.groups));
}

void emit_dense(const LayerToEmit& l, GraphBuilder& g) {
  const auto& dense = as<DenseLayer>(l);
  const DenseOptions& o = dense.options();
  std::string x = l.inputs[0];
  if (l.layer.input_shape().size() > 1) {  // dense reads any input as (N, features)
    onnx::NodeProto& flatten = g.node("Flatten", l.name + ".flatten", {x}, {l.name + ".flat"});
    set_int(flatten, "axis", 1);
    x = l.name + ".flat";
  }
  const std::string weight =
      g.initializer(l.name + ".weight", {as_int(o.units), as_int(dense.in_features())}, l.param("weight"));
  // y = x * W^T + b: Gemm with transB.
  const std::string bias = o.bias == BiasTerm::Enabled ? g.initializer(l.name + ".bias", {as_int(o.units)}, l.param("bias"))
                                                       : g.constant(l.name + ".bias", {as_int(o.units)}, 0.0f);
  onnx::NodeProto& node = g.node("Gemm", l.name, {x, weight, bias}, {l.output});
  set_int(node, "transB", 1);
}

void emit_batchnorm2d(const LayerToEmit& l, GraphBuilder& g) {
  const BatchNorm2dOptions& o = as<BatchNorm2dLayer>(l).options();
  const int64_t c = as_int(l.layer.input_shape().at(0));
  const std::string scale =
      o.affine ? g.initializer(l.name + ".weight", {c}, l.param("weight")) : g.constant(l.name + ".weight", {c}, 1.0f);
  const std::string shift =
      o.affine ? g.initializer(l.name + ".bias", {c}, l.param("bias")) : g.constant(l.name + ".bias", {c}, 0.0f);
  const std::string mean = g.initializer(l.name + ".running_mean", {c}, l.buffer("running_mean"));
  const std::string var = g.initializer(l.name + ".running_var", {c}, l.buffer("running_var"));
  onnx::NodeProto& node = g.node("BatchNormalization", l.name, {l.inputs[0], scale, shift, mean, var}, {l.output});
  set_float(node, "epsilon", static_cast<float>(o.eps));
}

void emit_pool(const LayerToEmit& l, GraphBuilder& g, const char* op) {
  const Pool2dOptions& o = as<Pool2dLayer>(l).options();
  onnx::NodeProto& node = g.node(op, l.name, {l.inputs[0]}, {l.output});
  set_ints(node, "kernel_shape", {as_int(o.kernel), as_int(o.kernel)});
  set_ints(node, "strides", {as_int(o.stride), as_int(o.stride)});
  set_ints(node, "pads", {as_int(o.padding), as_int(o.padding), as_int(o.padding), as_int(o.padding)});
  // avg_pool2d divides by the window's elements inside the input: count_include_pad 0, ONNX's default.
}

void emit_max_pool2d(const LayerToEmit& l, GraphBuilder& g) { emit_pool(l, g, "MaxPool"); }
void emit_avg_pool2d(const LayerToEmit& l, GraphBuilder& g) { emit_pool(l, g, "AveragePool"); }

void emit_activation(const LayerToEmit& l, GraphBuilder& g) {
  const ActivationOptions& o = as<ActivationLayer>(l).options();
  switch (o.function) {
    case ActivationFunction::LeakyRelu:
      set_float(g.node("LeakyRelu", l.name, {l.inputs[0]}, {l.output}), "alpha", o.negative_slope);
      return;
    case ActivationFunction::Sigmoid:
      g.node("Sigmoid", l.name, {l.inputs[0]}, {l.output});
      return;
    case ActivationFunction::Tanh:
      g.node("Tanh", l.name, {l.inputs[0]}, {l.output});
      return;
    case ActivationFunction::Silu:  // x * sigmoid(x): opset 13 has no SiLU operator
      g.node("Sigmoid", l.name + ".sigmoid", {l.inputs[0]}, {l.name + ".gate"});
      g.node("Mul", l.name, {l.inputs[0], l.name + ".gate"}, {l.output});
      return;
  }
}

void emit_relu(const LayerToEmit& l, GraphBuilder& g) { g.node("Relu", l.name, {l.inputs[0]}, {l.output}); }

void emit_global_avg_pool2d(const LayerToEmit& l, GraphBuilder& g) {
  g.node("GlobalAveragePool", l.name, {l.inputs[0]}, {l.output});
}

void emit_flatten(const LayerToEmit& l, GraphBuilder& g) {
  set_int(g.node("Flatten", l.name, {l.inputs[0]}, {l.output}), "axis", 1);
}

void emit_identity(const LayerToEmit& l, GraphBuilder& g) {  // dropout: the identity in evaluation
  g.node("Identity", l.name, {l.inputs[0]}, {l.output});
}

void emit_add(const LayerToEmit& l, GraphBuilder& g) {
  // Binary Add, chained in input order: (a + b) + c, as the layer sums.
  std::string sum = l.inputs[0];
  for (size_t i = 1; i < l.inputs.size(); ++i) {
    const bool last = i + 1 == l.inputs.size();
    const std::string out = last ? l.output : l.name + ".partial" + std::to_string(i);
    g.node("Add", last ? l.name : l.name + ".add" + std::to_string(i), {sum, l.inputs[i]}, {out});
    sum = out;
  }
}

void emit_concat(const LayerToEmit& l, GraphBuilder& g) {
  set_int(g.node("Concat", l.name, l.inputs, {l.output}), "axis", 1);
}

const std::map<std::string, LayerEmitter>& emitters() {
  static const std::map<std::string, LayerEmitter> table{
      {"conv2d", emit_conv2d},         {"dense", emit_dense},
      {"batchnorm2d", emit_batchnorm2d}, {"max_pool2d", emit_max_pool2d},
      {"avg_pool2d", emit_avg_pool2d},   {"global_avg_pool2d", emit_global_avg_pool2d},
      {"relu", emit_relu},               {"leaky_relu", emit_activation},
      {"sigmoid", emit_activation},      {"tanh", emit_activation},
      {"silu", emit_activation},         {"flatten", emit_flatten},
      {"dropout", emit_identity},        {"add", emit_add},
      {"concat", emit_concat},
  };
  return table;
}

}  // namespace

LayerEmitter emitter_for(const std::string& type) {
  const auto it = emitters().find(type);
  return it == emitters().end() ? nullptr : it->second;
}

std::string exportable_types() {
  std::ostringstream out;
  const char* sep = "";
  for (const auto& [type, emitter] : emitters()) {
    out << sep << type;
    sep = ", ";
  }
  return out.str();
}

}  // namespace dptrain::onnx_export
