// CUDA flatten: a device-to-device copy (or nothing, when output shares the input's memory).
#include "layers/flatten.h"

#include <memory>

#include "layers/cuda/cuda_layers.h"
#include "layers/layer_util.h"

namespace dptrain {

namespace {

// flatten on the GPU.
class CudaFlatten final : public FlattenLayer {
 public:
  CudaFlatten(const Shape& input_shape, Backend& backend) : FlattenLayer(input_shape), backend_(backend) {}

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    copy_if_distinct(x, y.data());
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    if (dx) copy_if_distinct(dy, dx->data());
  }

 private:
  void copy_if_distinct(const Tensor& from, float* to) {
    if (from.data() != to && from.num_elements() > 0) backend_.copy_on_device(to, from.data(), from.size_bytes());
  }

  Backend& backend_;
};

}  // namespace

std::unique_ptr<Layer> make_cuda_flatten(ConfigMap&, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaFlatten>(input_shape, backend);
}

}  // namespace dptrain
