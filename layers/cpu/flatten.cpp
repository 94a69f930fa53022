// CPU flatten: a copy (or nothing, when the model lets output share the input's memory).
#include "layers/flatten.h"

#include <algorithm>
#include <memory>

#include "layers/cpu/cpu_layers.h"
#include "layers/layer_util.h"

namespace dptrain {

namespace {

void copy_if_distinct(const Tensor& from, float* to) {
  if (from.data() != to) std::copy(from.data(), from.data() + from.num_elements(), to);
}

// flatten on the CPU.
class CpuFlatten final : public FlattenLayer {
 public:
  using FlattenLayer::FlattenLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    copy_if_distinct(x, y.data());
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    if (dx) copy_if_distinct(dy, dx->data());
  }
};

}  // namespace

std::unique_ptr<Layer> make_cpu_flatten(ConfigMap&, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuFlatten>(input_shape);
}

}  // namespace dptrain
