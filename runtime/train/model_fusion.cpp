// Relus absorbed by the layer after them (Model, Fusion): which ones, and how the start-up lines name them.
#include <map>
#include <string>

#include "runtime/train/model.h"

namespace dptrain {

void Model::plan_fusion(Fusion fusion) {
  absorbed_.assign(layers_.size(), 0);
  reads_ = inputs_;
  if (fusion == Fusion::Off) return;
  std::vector<std::vector<size_t>> consumers(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (size_t j : inputs_[i]) {
      if (j != kModelInput) consumers[j].push_back(i);
    }
  }
  const ActivationTypes floats{};
  for (size_t r = 0; r + 1 < layers_.size(); ++r) {
    if (std::string(layers_[r]->type()) != "relu" || consumers[r].size() != 1 || types_[r] != floats) continue;
    const size_t c = consumers[r][0];
    // The consumer reads the relu's input, unconverted, as its one input.
    if (inputs_[c].size() != 1 || types_[c] != floats || converted_inputs_[r][0]) continue;
    if (!layers_[c]->absorb_input_relu()) continue;
    absorbed_[r] = 1;
    reads_[c] = inputs_[r];
  }
}

std::string Model::fusions() const {
  std::map<std::string, size_t> count;  // consumer type -> relus it absorbed
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (size_t j : inputs_[i]) {
      if (j != kModelInput && absorbed_[j]) ++count[layers_[i]->type()];
    }
  }
  std::string text;
  for (const auto& [type, n] : count) {
    text += (text.empty() ? "relu into " : ", relu into ") + type + " (" + std::to_string(n) +
            (n == 1 ? " layer)" : " layers)");
  }
  return text;
}

}  // namespace dptrain
