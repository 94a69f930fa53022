// CUDA relu: cuDNN's RELU activation over the whole batch as one (1, count, 1, 1) tensor for float32
// activations, and two element-wise kernels for bf16 ones (it follows the type it is offered, so a
// relu between two bf16 layers keeps the activations in bf16).
#include "layers/relu.h"

#include <cuda_bf16.h>

#include <memory>

#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// y = max(x, 0) over bf16 values (exact: no rounding).
__global__ void relu_bf16_kernel(const __nv_bfloat16* x, __nv_bfloat16* y, size_t count) {
  const __nv_bfloat16 zero = __float2bfloat16_rn(0.0f);
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    y[i] = __bfloat162float(x[i]) > 0.0f ? x[i] : zero;
  }
}

// dx = dy where y > 0, else 0 (the set cuDNN tests), over bf16 values.
__global__ void relu_backward_bf16_kernel(const __nv_bfloat16* y, const __nv_bfloat16* dy, __nv_bfloat16* dx,
                                          size_t count) {
  const __nv_bfloat16 zero = __float2bfloat16_rn(0.0f);
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    dx[i] = __bfloat162float(y[i]) > 0.0f ? dy[i] : zero;
  }
}

// relu on the GPU. Backward passes dy where x > 0 (cuDNN tests y > 0, the same set), zero elsewhere.
class CudaRelu final : public ReluLayer {
 public:
  CudaRelu(const Shape& input_shape, CudaContext& cuda) : ReluLayer(input_shape), cuda_(cuda) {}

  // The type it is offered, float32 or bf16.
  ActivationTypes activation_types(DType offered) const override { return {offered, offered}; }

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    const size_t count = x.num_elements();
    if (count == 0) return;
    if (x.dtype() == DType::BFloat16) {
      relu_bf16_kernel<<<grid_for(count), kBlockThreads, 0, cuda_.stream()>>>(
          static_cast<const __nv_bfloat16*>(x.raw()), static_cast<__nv_bfloat16*>(y.raw()), count);
      DPTRAIN_CUDA_CHECK_LAUNCH();
      return;
    }
    activation_.forward(cuda_.cudnn(), x.data(), y.data(), count);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    const size_t count = x.num_elements();
    if (!dx || count == 0) return;
    if (dy.dtype() == DType::BFloat16) {
      relu_backward_bf16_kernel<<<grid_for(count), kBlockThreads, 0, cuda_.stream()>>>(
          static_cast<const __nv_bfloat16*>(y.raw()), static_cast<const __nv_bfloat16*>(dy.raw()),
          static_cast<__nv_bfloat16*>(dx->raw()), count);
      DPTRAIN_CUDA_CHECK_LAUNCH();
      return;
    }
    activation_.backward(cuda_.cudnn(), x.data(), y.data(), dy.data(), dx->data(), count);
  }

 private:
  CudaContext& cuda_;
  FlatActivation activation_{CUDNN_ACTIVATION_RELU};
};

std::unique_ptr<Layer> make_cuda_relu(ConfigMap&, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaRelu>(input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(relu, cuda, make_cuda_relu);

}  // namespace dptrain
