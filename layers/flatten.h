// FlattenLayer: (d1, d2, ...) per sample -> (d1 * d2 * ...), element order unchanged.
#pragma once

#include "layers/layer.h"
#include "runtime/core/backend.h"

namespace dptrain {

// flatten on every backend: input of any shape, output (its element count). Forward and backward
// are copies through the backend, or nothing where the model lets output share the input's memory.
class FlattenLayer final : public Layer {
 public:
  FlattenLayer(const Shape& input_shape, Backend& backend);
  const char* type() const override { return "flatten"; }
  // Any type it is offered: a copy.
  ActivationTypes activation_types(DType offered) const override { return {offered, offered}; }

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  Backend& backend_;
};

}  // namespace dptrain
