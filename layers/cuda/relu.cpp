// CUDA relu: cuDNN's RELU activation over the whole batch as one (1, count, 1, 1) tensor.
#include "layers/relu.h"

#include <memory>

#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"

namespace dptrain {

namespace {

// relu on the GPU. Backward passes dy where x > 0 (cuDNN tests y > 0, the same set), zero elsewhere.
class CudaRelu final : public ReluLayer {
 public:
  CudaRelu(const Shape& input_shape, CudaContext& cuda) : ReluLayer(input_shape), cuda_(cuda) {}

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    if (x.num_elements() == 0) return;
    plan(x.num_elements());
    const float one = 1.0f, zero = 0.0f;
    DPTRAIN_CUDNN_CHECK(cudnnActivationForward(cuda_.cudnn(), activation_.get(), &one, desc_.get(), x.data(), &zero,
                                               desc_.get(), y.data()));
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    if (!dx || x.num_elements() == 0) return;
    plan(x.num_elements());
    const float one = 1.0f, zero = 0.0f;
    DPTRAIN_CUDNN_CHECK(cudnnActivationBackward(cuda_.cudnn(), activation_.get(), &one, desc_.get(), y.data(),
                                                desc_.get(), dy.data(), desc_.get(), x.data(), &zero, desc_.get(),
                                                dx->data()));
  }

 private:
  void plan(size_t count) {
    if (count == planned_count_) return;
    desc_.set(1, count, 1, 1);
    planned_count_ = count;
  }

  CudaContext& cuda_;
  ActivationDescriptor activation_{CUDNN_ACTIVATION_RELU};
  TensorDescriptor desc_;
  size_t planned_count_ = 0;
};

std::unique_ptr<Layer> make_cuda_relu(ConfigMap&, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaRelu>(input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(relu, cuda, make_cuda_relu);

}  // namespace dptrain
