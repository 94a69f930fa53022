// Predictor: a trained model run forward as evaluation runs it (batch-norm running statistics, no
// dropout) on batches of inputs, giving each input's class probabilities: what `dptrain predict` runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/backend.h"
#include "runtime/core/run_config.h"
#include "runtime/core/tensor.h"
#include "runtime/train/model.h"

namespace dptrain {

// A run's model with a checkpoint's parameters, for inference only (no gradients, no optimizer).
class Predictor {
 public:
  // Builds the model of `config` (its `model:` section) for inputs of `input_shape` on `backend`, and
  // loads the parameters and non-trained state (batch-norm statistics) of `state`, read from `source`.
  // CheckpointError naming `source` for a tensor that is missing, of another shape or not finite, or one
  // the model does not have. The predictor must not outlive `backend`.
  Predictor(RunConfig& config, const Shape& input_shape, const CheckpointState& state, const std::string& source,
            Backend& backend);

  const Model& model() const { return *model_; }
  size_t num_classes() const { return model_->num_classes(); }

  // The class probabilities (softmax of the logits) of every sample of x (N, ...input_shape), in host
  // memory: (N, num_classes()) on the host. The model runs in Mode::Eval, as a run's evaluation does.
  Tensor probabilities(const Tensor& x);

 private:
  std::unique_ptr<Model> model_;
  std::vector<int32_t> labels_;  // zeros: the loss layer wants labels, which do not change the logits
  std::vector<uint64_t> ids_;    // 0, 1, ...: sample ids for the step
};

// Softmax of each row of `logits` (rows, classes), computed in double and written to `out` (the same size).
void softmax_rows(const float* logits, size_t rows, size_t classes, float* out);

}  // namespace dptrain
