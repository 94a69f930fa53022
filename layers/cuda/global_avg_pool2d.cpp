// CUDA global_avg_pool2d: cuDNN average pooling with one unpadded window over each whole plane.
#include "layers/global_avg_pool2d.h"

#include <memory>
#include <string>

#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"

namespace dptrain {

namespace {

// global_avg_pool2d on the GPU through cuDNN.
class CudaGlobalAvgPool2d final : public GlobalAvgPool2dLayer {
 public:
  CudaGlobalAvgPool2d(const Shape& input_shape, CudaContext& cuda) : GlobalAvgPool2dLayer(input_shape), cuda_(cuda) {
    pool_desc_.set_whole_plane(CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, height_, width_);
  }

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    const size_t n = check_forward_shapes(*this, x, y);
    if (n == 0) return;
    plan(n);
    const float one = 1.0f, zero = 0.0f;
    DPTRAIN_CUDNN_CHECK(cudnnPoolingForward(cuda_.cudnn(), pool_desc_.get(), &one, x_desc_.get(), x.data(), &zero,
                                            y_desc_.get(), y.data()));
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    const size_t n = check_backward_shapes(*this, x, y, dy, dx);
    if (!dx || n == 0) return;
    plan(n);
    const float one = 1.0f, zero = 0.0f;
    DPTRAIN_CUDNN_CHECK(cudnnPoolingBackward(cuda_.cudnn(), pool_desc_.get(), &one, y_desc_.get(), y.data(),
                                             y_desc_.get(), dy.data(), x_desc_.get(), x.data(), &zero, x_desc_.get(),
                                             dx->data()));
  }

 private:
  // Sets the tensor descriptors for a batch of n, and checks that cuDNN's output is (C, 1, 1).
  void plan(size_t n) {
    if (n == planned_batch_) return;
    x_desc_.set(n, channels_, height_, width_);
    y_desc_.set(n, channels_, 1, 1);
    int dims[4] = {};
    DPTRAIN_CUDNN_CHECK(
        cudnnGetPooling2dForwardOutputDim(pool_desc_.get(), x_desc_.get(), &dims[0], &dims[1], &dims[2], &dims[3]));
    if (dims[2] != 1 || dims[3] != 1) {
      throw DeviceError("global_avg_pool2d: cuDNN computes a " + std::to_string(dims[2]) + "x" +
                        std::to_string(dims[3]) + " output where the layer expects 1x1");
    }
    planned_batch_ = n;
  }

  CudaContext& cuda_;
  PoolingDescriptor pool_desc_;
  TensorDescriptor x_desc_, y_desc_;
  size_t planned_batch_ = 0;
};

std::unique_ptr<Layer> make_cuda_global_avg_pool2d(ConfigMap&, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaGlobalAvgPool2d>(input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(global_avg_pool2d, cuda, make_cuda_global_avg_pool2d);

}  // namespace dptrain
