// AddLayer: the element-wise sum of two or more inputs of one shape (a residual shortcut's merge).
#pragma once

#include <vector>

#include "layers/layer.h"
#include "runtime/core/backend.h"

namespace dptrain {

// y = x0 + x1 + ...; every input has the same per-sample shape, which is the output's. Backward
// hands dy to every input unchanged. Written once for every backend, through the Backend interface.
class AddLayer final : public MergeLayer {
 public:
  // ShapeError unless there are at least two inputs, all of one shape.
  AddLayer(std::vector<Shape> input_shapes, Backend& backend);

  const char* type() const override { return "add"; }
  // The type it is offered, for every input and the output (bf16 sums are added in float32 and
  // rounded once per input, through Backend::convert).
  ActivationTypes activation_types(DType offered) const override { return {offered, offered}; }
  void forward_inputs(const std::vector<const Tensor*>& xs, Tensor& y, const StepInfo& step) override;
  void backward_inputs(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& dy,
                       const std::vector<Tensor*>& dxs, const StepInfo& step) override;

 private:
  Backend& backend_;
};

}  // namespace dptrain
