// CUDA leaky_relu, sigmoid, tanh and silu: cuDNN's activations where cuDNN has the function
// (sigmoid, tanh, and silu as swish with beta 1), a grid-stride kernel for leaky_relu.
#include <cudnn.h>

#include <memory>

#include "layers/activation.h"
#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// y = x > 0 ? x : slope * x.
__global__ void leaky_relu_forward(const float* x, float* y, size_t count, float slope) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    y[i] = v > 0.0f ? v : v * slope;
  }
}

// dx = x > 0 ? dy : slope * dy (PyTorch's gradient, slope at x == 0).
__global__ void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t count, float slope) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * slope;
  }
}

// cuDNN's mode for a function it has.
cudnnActivationMode_t cudnn_mode(ActivationFunction function) {
  switch (function) {
    case ActivationFunction::Sigmoid:
      return CUDNN_ACTIVATION_SIGMOID;
    case ActivationFunction::Tanh:
      return CUDNN_ACTIVATION_TANH;
    case ActivationFunction::Silu:
      return CUDNN_ACTIVATION_SWISH;
    case ActivationFunction::LeakyRelu:
      break;
  }
  // leaky_relu runs its own kernel; its descriptor is made but never used.
  return CUDNN_ACTIVATION_IDENTITY;
}

// An element-wise activation on the GPU; the batch is one (1, count, 1, 1) tensor to cuDNN.
class CudaActivation final : public ActivationLayer {
 public:
  CudaActivation(const ActivationOptions& options, const Shape& input_shape, CudaContext& cuda)
      : ActivationLayer(options, input_shape), cuda_(cuda), activation_(cudnn_mode(options.function)) {}

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    const size_t count = x.num_elements();
    if (count == 0) return;
    if (options_.function == ActivationFunction::LeakyRelu) {
      leaky_relu_forward<<<grid_for(count), kBlockThreads, 0, cuda_.stream()>>>(x.data(), y.data(), count,
                                                                                options_.negative_slope);
      DPTRAIN_CUDA_CHECK_LAUNCH();
      return;
    }
    activation_.forward(cuda_.cudnn(), x.data(), y.data(), count);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    const size_t count = x.num_elements();
    if (!dx || count == 0) return;
    if (options_.function == ActivationFunction::LeakyRelu) {
      leaky_relu_backward<<<grid_for(count), kBlockThreads, 0, cuda_.stream()>>>(x.data(), dy.data(), dx->data(), count,
                                                                                 options_.negative_slope);
      DPTRAIN_CUDA_CHECK_LAUNCH();
      return;
    }
    activation_.backward(cuda_.cudnn(), x.data(), y.data(), dy.data(), dx->data(), count);
  }

 private:
  CudaContext& cuda_;
  FlatActivation activation_;
};

template <ActivationFunction F>
std::unique_ptr<Layer> make_cuda_activation(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaActivation>(ActivationOptions::read(options, F), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(leaky_relu, cuda, make_cuda_activation<ActivationFunction::LeakyRelu>);
DPTRAIN_REGISTER_LAYER(sigmoid, cuda, make_cuda_activation<ActivationFunction::Sigmoid>);
DPTRAIN_REGISTER_LAYER(tanh, cuda, make_cuda_activation<ActivationFunction::Tanh>);
DPTRAIN_REGISTER_LAYER(silu, cuda, make_cuda_activation<ActivationFunction::Silu>);

}  // namespace dptrain
