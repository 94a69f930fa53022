// Post-training int8 quantization (dptrain quantize): which conv2d and dense weights a model can hold
// and compute in int8, their per-output-channel scales, and the ranges of their inputs over a few
// calibration batches.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/train/model.h"

namespace dptrain {

// A conv2d or dense weight left in float32, and why.
struct Int8LeftOut {
  std::string weight;
  std::string reason;
};

// The ranges of the inputs of a model's conv2d and dense layers, widened batch by batch.
class Int8Calibration {
 public:
  // For `model`, which must outlive the calibration (it refers to the model's parameter entries).
  explicit Int8Calibration(const Model& model);

  // After a Mode::Eval step of the model over `x` (n samples, on the host): widens each layer's range.
  void observe(const Model& model, const Tensor& x, size_t n);
  size_t batches() const { return batches_; }

  // The weights that compute in int8: scales max |w[c]| / 127 per output channel from the model's
  // parameters, and the largest input seen. A layer whose input went negative (int8 inputs are
  // unsigned: the input of a layer after a ReLU) or stayed 0 is left in float32 and named in `left_out`.
  std::vector<CheckpointQuantization> quantization(const Model& model, std::vector<Int8LeftOut>* left_out) const;

 private:
  struct Observed {
    size_t layer = 0;
    const ParamEntry* weight = nullptr;
    float min = 0, max = 0;
  };
  std::vector<Observed> layers_;
  size_t batches_ = 0;
};

// The argument of Model::use_int8 for a checkpoint's quantization.
std::vector<std::pair<std::string, Int8Weights>> int8_weights(const std::vector<CheckpointQuantization>& quantization);

}  // namespace dptrain
