// CUDA avg_pool2d: cuDNN pooling in COUNT_EXCLUDE_PADDING mode, which divides each window by its
// elements inside the input, exactly as the CPU layer does.
#include "layers/avg_pool2d.h"

#include <memory>
#include <string>

#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"

namespace dptrain {

namespace {

// avg_pool2d on the GPU through cuDNN.
class CudaAvgPool2d final : public AvgPool2dLayer {
 public:
  CudaAvgPool2d(const Pool2dOptions& options, const Shape& input_shape, CudaContext& cuda)
      : AvgPool2dLayer(options, input_shape), cuda_(cuda) {
    pool_desc_.set(CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, options_.kernel, options_.stride, options_.padding);
  }

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  // Sets the tensor descriptors for a batch of n, and checks cuDNN's output size against the layer's.
  void plan(size_t n);

  CudaContext& cuda_;
  PoolingDescriptor pool_desc_;
  TensorDescriptor x_desc_, y_desc_;
  size_t planned_batch_ = 0;
};

void CudaAvgPool2d::plan(size_t n) {
  if (n == planned_batch_) return;
  x_desc_.set(n, channels_, in_height_, in_width_);
  y_desc_.set(n, channels_, out_height_, out_width_);
  int dims[4] = {};
  DPTRAIN_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pool_desc_.get(), x_desc_.get(), &dims[0], &dims[1],
                                                        &dims[2], &dims[3]));
  if (static_cast<size_t>(dims[2]) != out_height_ || static_cast<size_t>(dims[3]) != out_width_) {
    throw DeviceError("avg_pool2d: cuDNN computes a " + std::to_string(dims[2]) + "x" + std::to_string(dims[3]) +
                      " output where the layer expects " + std::to_string(out_height_) + "x" +
                      std::to_string(out_width_));
  }
  planned_batch_ = n;
}

void CudaAvgPool2d::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (n == 0) return;
  plan(n);
  const float one = 1.0f, zero = 0.0f;
  DPTRAIN_CUDNN_CHECK(cudnnPoolingForward(cuda_.cudnn(), pool_desc_.get(), &one, x_desc_.get(), x.data(), &zero,
                                          y_desc_.get(), y.data()));
}

void CudaAvgPool2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (!dx || n == 0) return;
  plan(n);
  const float one = 1.0f, zero = 0.0f;
  DPTRAIN_CUDNN_CHECK(cudnnPoolingBackward(cuda_.cudnn(), pool_desc_.get(), &one, y_desc_.get(), y.data(),
                                           y_desc_.get(), dy.data(), x_desc_.get(), x.data(), &zero, x_desc_.get(),
                                           dx->data()));
}

std::unique_ptr<Layer> make_cuda_avg_pool2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaAvgPool2d>(Pool2dOptions::read(options), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(avg_pool2d, cuda, make_cuda_avg_pool2d);

}  // namespace dptrain
