// The model's activations: their element types, planned once from each layer's answer
// (Layer::activation_types), the conversions the model makes between layers whose types differ, and
// a layer's output read after a step.
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/train/model.h"

namespace dptrain {

void Model::plan_activation_types() {
  types_.clear();
  converted_inputs_.clear();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::vector<size_t>& inputs = inputs_[i];
    const ActivationTypes types = layers_[i]->activation_types(output_type(inputs[0]));
    types_.push_back(types);
    std::vector<char> converted;
    for (size_t j : inputs) converted.push_back(output_type(j) != types.input ? 1 : 0);
    converted_inputs_.push_back(std::move(converted));
  }
  if (types_.back().input != DType::Float32) {
    throw UsageError(std::string("the loss layer ") + layers_.back()->type() + " must read float32 logits");
  }
}

size_t Model::num_conversions() const {
  size_t count = 0;
  for (const auto& inputs : converted_inputs_) {
    for (char c : inputs) count += c ? 1 : 0;
  }
  return count;
}

std::string Model::describe_activation_types() const {
  size_t bf16 = 0;
  for (size_t i = 0; i + 1 < layers_.size(); ++i) bf16 += types_[i].output == DType::BFloat16 ? 1 : 0;
  if (bf16 == 0 && num_conversions() == 0) return "activations float32";
  std::string text = "activations: " + std::to_string(bf16) + " of " + std::to_string(layers_.size() - 1) +
                     " layers write bf16; inputs converted for";
  const char* separator = " ";
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (size_t k = 0; k < inputs_[i].size(); ++k) {
      if (!converted_inputs_[i][k]) continue;
      text += separator + names_[i] + " (to " + to_string(types_[i].input) + ")";
      separator = ", ";
    }
  }
  return text;
}

Tensor Model::scratch_view(size_t k, const Shape& shape, DType dtype) {
  return Tensor::view(scratch_[k].raw(), shape, dtype, backend_);
}

std::vector<Tensor> Model::layer_inputs_for(size_t i, size_t n, const std::vector<Tensor>& acts, const Tensor& input,
                                            bool convert) {
  std::vector<Tensor> out;
  for (size_t k = 0; k < reads_[i].size(); ++k) {
    const size_t j = reads_[i][k];
    const Tensor& produced = j == kModelInput ? input : acts[j];
    if (!converted_inputs_[i][k]) {
      out.push_back(produced);
      continue;
    }
    Tensor copy = conversions_[i][k].leading(n);
    if (convert) backend_.convert(produced, copy, Accumulate::Overwrite);
    out.push_back(copy);
  }
  return out;
}

Tensor Model::output(size_t i, size_t n) const {
  if (i + 1 >= layers_.size() || n > capacity_) {
    throw ShapeError("no output of layer " + std::to_string(i) + " for " + std::to_string(n) + " samples to read");
  }
  Tensor out = activations_[i].leading(n);
  if (absorbed_[i]) {  // computed now, from its input's output of the same step
    const size_t j = inputs_[i][0];
    if (j == kModelInput) throw ShapeError("no output of layer " + names_[i] + ": it reads the model's input");
    layers_[i]->forward(activations_[j].leading(n), out, StepInfo{Mode::Eval});
  }
  return out;
}

}  // namespace dptrain
