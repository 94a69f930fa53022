// ConcatLayer: joins inputs along the channel axis (an Inception module's merge).
#pragma once

#include <vector>

#include "layers/layer.h"
#include "runtime/core/backend.h"

namespace dptrain {

// Inputs (C_i, ...rest) with the same trailing dimensions; output (sum of C_i, ...rest), input 0's
// channels first, as torch.cat(dim=1). Written once for every backend, through the Backend interface.
class ConcatLayer final : public MergeLayer {
 public:
  // ShapeError unless there are at least two inputs whose dimensions after the first agree.
  ConcatLayer(std::vector<Shape> input_shapes, Backend& backend);

  const char* type() const override { return "concat"; }
  void forward_inputs(const std::vector<const Tensor*>& xs, Tensor& y, const StepInfo& step) override;
  void backward_inputs(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& dy,
                       const std::vector<Tensor*>& dxs, const StepInfo& step) override;

 private:
  Backend& backend_;
  std::vector<size_t> offsets_;  // where input i starts within one output sample, in floats
};

}  // namespace dptrain
