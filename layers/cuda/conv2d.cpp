// CUDA conv2d: cuDNN forward, backward data and backward filter, algorithms from cuDNN's
// heuristics, one workspace owned by the layer and reused by every call. With precision bf16 the
// convolutions read and write bf16 copies (float32 accumulation); the layer's tensors stay float32.
#include "layers/conv2d.h"

#include <memory>
#include <string>
#include <vector>

#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/bf16_buffer.h"
#include "runtime/core/cuda/cuda_backend.h"

namespace dptrain {

namespace {

// Algorithms whose workspace exceeds this are passed over for the next heuristic choice.
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

// The first heuristic result that is supported and fits the workspace limit.
template <typename Perf>
Perf pick(const std::vector<Perf>& results, int count, const char* what, Precision precision) {
  for (int i = 0; i < count; ++i) {
    if (results[i].status == CUDNN_STATUS_SUCCESS && results[i].memory <= kMaxWorkspaceBytes) return results[i];
  }
  throw DeviceError(std::string("conv2d: cuDNN offers no ") + what + " algorithm for this shape in " +
                    to_string(precision) + " within " + std::to_string(kMaxWorkspaceBytes >> 20) +
                    " MiB of workspace" + (precision == Precision::Bf16 ? " (bf16 needs sm_80 or newer)" : "") +
                    " (" + device_where() + ")");
}

// cuDNN's element type and math mode for a precision.
cudnnDataType_t data_type(Precision precision) {
  return precision == Precision::Bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
cudnnMathType_t math_type(Precision precision) {
  switch (precision) {
    case Precision::Float32:
      return CUDNN_FMA_MATH;
    case Precision::Tf32:
      return CUDNN_DEFAULT_MATH;
    case Precision::Bf16:
      return CUDNN_TENSOR_OP_MATH;
  }
  return CUDNN_FMA_MATH;
}

// conv2d on the GPU through cuDNN.
class CudaConv2d final : public Conv2dLayer {
 public:
  CudaConv2d(const Conv2dOptions& options, const Shape& input_shape, CudaContext& cuda)
      : Conv2dLayer(options, input_shape), cuda_(cuda) {}

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
  bool bf16() const { return planned_precision_ == Precision::Bf16; }
  // Sets the descriptors for a batch of n and picks the algorithms, unless already done for n
  // in the context's current precision.
  void plan(size_t n);

  CudaContext& cuda_;
  // x, y and w in the compute precision; out and bias always float32 (the bias terms).
  TensorDescriptor x_desc_, y_desc_, out_desc_, bias_desc_;
  FilterDescriptor w_desc_;
  ConvolutionDescriptor conv_desc_;
  cudnnConvolutionFwdAlgo_t fwd_algo_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo_{};
  size_t workspace_bytes_ = 0;  // the largest of the three algorithms' needs
  DeviceBuffer workspace_;
  // bf16 copies: the input (x, then dx), the output (y, then dy) and the filter (w, then dw).
  Bf16Buffer x16_, y16_, w16_;
  size_t planned_batch_ = 0;
  Precision planned_precision_ = Precision::Float32;
};

void CudaConv2d::plan(size_t n) {
  const Precision precision = cuda_.precision();
  if (n == planned_batch_ && precision == planned_precision_) return;
  const size_t cout = options_.out_channels;
  const cudnnDataType_t type = data_type(precision);
  x_desc_.set(n, in_channels_, in_height_, in_width_, type);
  y_desc_.set(n, cout, out_height_, out_width_, type);
  out_desc_.set(n, cout, out_height_, out_width_);
  bias_desc_.set(1, cout, 1, 1);
  w_desc_.set(cout, group_in_channels(), options_.kernel, options_.kernel, type);
  conv_desc_.set(options_.padding, options_.stride, options_.dilation, options_.groups, math_type(precision));

  int dims[4] = {};
  DPTRAIN_CUDNN_CHECK(
      cudnnGetConvolution2dForwardOutputDim(conv_desc_.get(), x_desc_.get(), w_desc_.get(), &dims[0], &dims[1],
                                            &dims[2], &dims[3]));
  if (static_cast<size_t>(dims[2]) != out_height_ || static_cast<size_t>(dims[3]) != out_width_) {
    throw DeviceError("conv2d: cuDNN computes a " + std::to_string(dims[2]) + "x" + std::to_string(dims[3]) +
                      " output where the layer expects " + std::to_string(out_height_) + "x" +
                      std::to_string(out_width_));
  }

  cudnnHandle_t h = cuda_.cudnn();
  int found = 0;
  std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x_desc_.get(), w_desc_.get(), conv_desc_.get(),
                                                             y_desc_.get(), static_cast<int>(fwd.size()), &found,
                                                             fwd.data()));
  const auto f = pick(fwd, found, "forward", precision);
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bwd_data(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w_desc_.get(), y_desc_.get(), conv_desc_.get(),
                                                                  x_desc_.get(), static_cast<int>(bwd_data.size()),
                                                                  &found, bwd_data.data()));
  const auto d = pick(bwd_data, found, "backward-data", precision);
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bwd_filter(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x_desc_.get(), y_desc_.get(), conv_desc_.get(),
                                                                    w_desc_.get(), static_cast<int>(bwd_filter.size()),
                                                                    &found, bwd_filter.data()));
  const auto w = pick(bwd_filter, found, "backward-filter", precision);
  fwd_algo_ = f.algo;
  bwd_data_algo_ = d.algo;
  bwd_filter_algo_ = w.algo;

  // The heuristics' memory estimates can be below what the call asks for: ask each algorithm.
  size_t fb = 0, db = 0, wb = 0;
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, x_desc_.get(), w_desc_.get(), conv_desc_.get(),
                                                              y_desc_.get(), fwd_algo_, &fb));
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, w_desc_.get(), y_desc_.get(), conv_desc_.get(),
                                                                   x_desc_.get(), bwd_data_algo_, &db));
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, x_desc_.get(), y_desc_.get(),
                                                                     conv_desc_.get(), w_desc_.get(),
                                                                     bwd_filter_algo_, &wb));
  workspace_bytes_ = std::max(fb, std::max(db, wb));
  workspace_.reserve(workspace_bytes_);
  planned_batch_ = n;
  planned_precision_ = precision;
}

void CudaConv2d::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (n == 0) return;
  plan(n);
  cudnnHandle_t h = cuda_.cudnn();
  cudaStream_t stream = cuda_.stream();
  const Tensor& w = params_.at(0);
  const void* x_in = bf16() ? x16_.cast_from(x.data(), x.num_elements(), stream) : static_cast<const void*>(x.data());
  const void* w_in = bf16() ? w16_.cast_from(w.data(), w.num_elements(), stream) : static_cast<const void*>(w.data());
  void* y_out = bf16() ? static_cast<void*>(y16_.reserve(y.num_elements())) : y.data();
  const float one = 1.0f, zero = 0.0f;
  DPTRAIN_CUDNN_CHECK(cudnnConvolutionForward(h, &one, x_desc_.get(), x_in, w_desc_.get(), w_in, conv_desc_.get(),
                                              fwd_algo_, workspace_.get(), workspace_bytes_, &zero, y_desc_.get(),
                                              y_out));
  if (bf16()) y16_.cast_to(y.data(), y.num_elements(), stream);
  if (has_bias()) {
    DPTRAIN_CUDNN_CHECK(
        cudnnAddTensor(h, &one, bias_desc_.get(), params_.at(1).data(), &one, out_desc_.get(), y.data()));
  }
}

void CudaConv2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (n == 0) return;
  plan(n);
  cudnnHandle_t h = cuda_.cudnn();
  cudaStream_t stream = cuda_.stream();
  const Tensor& w = params_.at(0);
  Tensor& dw = grads_.at(0);
  const float one = 1.0f, zero = 0.0f;
  if (has_bias()) {
    DPTRAIN_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, out_desc_.get(), dy.data(), &zero, bias_desc_.get(),
                                                     grads_.at(1).data()));
  }
  // Everything below runs in order on one stream, so each bf16 copy may be reused once read.
  const void* x_in = bf16() ? x16_.cast_from(x.data(), x.num_elements(), stream) : static_cast<const void*>(x.data());
  const void* dy_in =
      bf16() ? y16_.cast_from(dy.data(), dy.num_elements(), stream) : static_cast<const void*>(dy.data());
  void* dw_out = bf16() ? static_cast<void*>(w16_.reserve(dw.num_elements())) : dw.data();
  DPTRAIN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, x_desc_.get(), x_in, y_desc_.get(), dy_in,
                                                     conv_desc_.get(), bwd_filter_algo_, workspace_.get(),
                                                     workspace_bytes_, &zero, w_desc_.get(), dw_out));
  if (bf16()) w16_.cast_to(dw.data(), dw.num_elements(), stream);
  if (!dx) return;
  const void* w_in = bf16() ? w16_.cast_from(w.data(), w.num_elements(), stream) : static_cast<const void*>(w.data());
  void* dx_out = bf16() ? static_cast<void*>(x16_.reserve(dx->num_elements())) : dx->data();
  DPTRAIN_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, w_desc_.get(), w_in, y_desc_.get(), dy_in,
                                                   conv_desc_.get(), bwd_data_algo_, workspace_.get(),
                                                   workspace_bytes_, &zero, x_desc_.get(), dx_out));
  if (bf16()) x16_.cast_to(dx->data(), dx->num_elements(), stream);
}

std::unique_ptr<Layer> make_cuda_conv2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaConv2d>(Conv2dOptions::read(options, input_shape), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(conv2d, cuda, make_cuda_conv2d);

}  // namespace dptrain
