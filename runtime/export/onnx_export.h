// ONNX export: a trained model as a standard ONNX file, for inference runtimes other than dptrain
// (OpenCV's DNN module, ONNX Runtime, TensorRT).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace onnx {
class ModelProto;
}

namespace dptrain {

class Model;
class Tensor;

// What an exported file holds besides the graph.
struct OnnxExportOptions {
  int64_t opset = 13;                                          // the ai.onnx operator set the graph is written for
  std::string graph_name = "dptrain";                          // the graph's name (the run's name)
  std::vector<std::pair<std::string, std::string>> metadata;  // the model's metadata_props, in order
};

// Graph value names of an exported model.
inline constexpr char kOnnxInput[] = "input";                  // (batch, ...model input shape), normalised
inline constexpr char kOnnxLogits[] = "logits";                // (batch, classes)
inline constexpr char kOnnxProbabilities[] = "probabilities";  // (batch, classes), softmax of the logits

// The model in evaluation form: batch normalisation with its running statistics, dropout as the
// identity, the loss layer as a softmax. One input (kOnnxInput, what the first layer reads: the data
// set's normalisation already applied) and two outputs (kOnnxLogits, kOnnxProbabilities), all with a
// symbolic batch dimension "batch". `parameters` and `buffers` are host copies of the model's flat
// buffers (Model::host_parameters(), host_buffers()). Throws UsageError naming the layer when a layer
// type has no ONNX form.
onnx::ModelProto to_onnx(const Model& model, const Tensor& parameters, const Tensor& buffers,
                         const OnnxExportOptions& options);

// Checks `model` with ONNX's checker and shape inference, then writes it to `path` through a
// temporary file in the same folder, renamed into place, so that an existing file at `path` is either
// replaced whole or left untouched. Throws UsageError when the checker refuses the model or the file
// cannot be written.
void write_onnx(const onnx::ModelProto& model, const std::string& path);

}  // namespace dptrain
