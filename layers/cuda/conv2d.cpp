// CUDA conv2d: cuDNN forward, backward data and backward filter. Each (batch, precision) gets a
// plan: descriptors and one algorithm per direction chosen from cuDNN's heuristics (by
// layers/conv_algorithm.h), with the math type cuDNN reported for it set on that direction's
// descriptor. Plans are kept per batch, so switching between the training and the evaluation batch
// plans nothing again. With precision bf16 the layer reads and writes bf16 activations (x, y, dx,
// dy: the model plans them so, Layer::activation_types) and cuDNN accumulates in float32; the bf16
// copy of the weights is made once per forward pass and reused by backward; the weight and bias
// gradients are float32. Where cuDNN has no bf16 algorithm for the shape (one input channel, on
// some GPUs), the layer computes in float32, converting its operands, and says so once. Tensors of
// another type than the computation's (float32 tensors given to a bf16 layer directly) are
// converted on the way in and out.
#include "layers/conv2d.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "layers/conv_algorithm.h"
#include "layers/cuda/cudnn_descriptors.h"
#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/kernels.h"
#include "runtime/core/cuda/operand_buffer.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/plan_cache.h"

namespace dptrain {

namespace {

// Algorithms whose workspace exceeds this are passed over for the next heuristic choice.
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;
// Plans kept per layer: the training and the evaluation batch, each with its smaller last batch
// and uneven per-worker slices, in up to two precisions.
constexpr size_t kPlansKept = 8;

// The element type a plan computes in.
DType compute_type(Precision precision) { return precision == Precision::Bf16 ? DType::BFloat16 : DType::Float32; }

// cuDNN's element type and the math type the heuristics are asked with, for a precision.
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

// cuDNN's heuristic answers in the terms of conv_algorithm.h.
template <typename Perf>
std::vector<ConvAlgorithmCandidate> to_candidates(const std::vector<Perf>& results, int count) {
  std::vector<ConvAlgorithmCandidate> out;
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    out.push_back({static_cast<int>(r.algo),
                   r.status == CUDNN_STATUS_SUCCESS ? AlgorithmStatus::Supported : AlgorithmStatus::NotSupported,
                   r.memory,
                   r.determinism == CUDNN_DETERMINISTIC ? Reproducibility::Deterministic
                                                        : Reproducibility::NonDeterministic,
                   static_cast<int>(r.mathType)});
  }
  return out;
}

// A heuristics query's status: false for NOT_SUPPORTED (any of its sub-codes), which means "no
// algorithm" and is reported by the choice; any other failure throws as DPTRAIN_CUDNN_CHECK does.
bool listed(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (CUDNN_STATUS_CATEGORY(status) == CUDNN_STATUS_NOT_SUPPORTED) return false;
  cudnn_check(status, call, file, line);
  return true;
}
#define DPTRAIN_CUDNN_LISTED(call) listed((call), #call, __FILE__, __LINE__)

// The batch and the context's precision a plan was made for (the layer's other shapes are fixed).
struct ConvPlanKey {
  size_t batch = 0;
  Precision precision = Precision::Float32;
  bool operator==(const ConvPlanKey& other) const { return batch == other.batch && precision == other.precision; }
};

// What one (batch, precision) runs with. Each direction has its own convolution descriptor so that
// each carries the math type cuDNN reported for its algorithm.
struct ConvPlan {
  Precision compute = Precision::Float32;  // the context's precision, or float32 as the bf16 fallback
  TensorDescriptor x, y;                   // in the compute precision
  TensorDescriptor out;                    // y in float32, for the bias
  FilterDescriptor w;                      // in the compute precision
  ConvolutionDescriptor forward_conv, data_conv, filter_conv;
  cudnnConvolutionFwdAlgo_t forward_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  size_t workspace_bytes = 0;  // the largest of the three algorithms' needs
};

// conv2d on the GPU through cuDNN.
class CudaConv2d final : public Conv2dLayer {
 public:
  CudaConv2d(const Conv2dOptions& options, const Shape& input_shape, CudaContext& cuda)
      : Conv2dLayer(options, input_shape), cuda_(cuda), plans_(kPlansKept) {
    bias_desc_.set(1, options_.out_channels, 1, 1);
  }

  // bf16 in and out under precision bf16 (also where a shape falls back to float32 math, which
  // converts inside the layer); float32 otherwise.
  ActivationTypes activation_types(DType) const override {
    const DType type = compute_type(cuda_.precision());
    return {type, type};
  }
  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
  // y += bias per channel, on y in its own type (cuDNN for float32, a kernel for bf16).
  void add_bias(const ConvPlan& p, Tensor& y, size_t n);
  // The plan for a batch of n in the context's current precision, made on first use.
  const ConvPlan& plan(size_t n);
  // Descriptors for a batch of n computing in `compute`, and cuDNN's candidates for them.
  std::unique_ptr<ConvPlan> describe(size_t n, Precision compute, ConvCandidates& candidates) const;
  // Sets the chosen algorithms, their math types and the workspace they need on `plan`; false when
  // cuDNN refuses one of them at the workspace query (then marked NotSupported in `candidates`).
  bool apply(ConvPlan& plan, const ConvAlgorithms& chosen, ConvCandidates& candidates);
  // Chooses and applies algorithms for `plan`, passing over those cuDNN refuses once asked.
  ConvAlgorithmChoice choose(ConvPlan& plan, ConvCandidates& candidates, const ConvAlgorithmRules& rules);
  // "conv2d 1->32 channels, 3x3 kernel, on 1x28x28 inputs".
  std::string what() const;

  CudaContext& cuda_;
  TensorDescriptor bias_desc_;  // (1, C_out, 1, 1), float32
  PlanCache<ConvPlanKey, ConvPlan> plans_;
  DeviceBuffer workspace_;  // shared by every plan: as large as the largest needs
  // Operands in the compute type where the tensors have another: the input (x, then dx), the
  // output (y, then dy), the filter and the filter's gradient.
  OperandBuffer x_op_, y_op_, w_op_, dw_op_;
  // The filter in the compute type, as the last forward pass made it (weights change only between
  // a step's backward and the next forward); null before the first.
  const void* w_compute_ = nullptr;
  DType w_compute_type_ = DType::Float32;
  bool fallback_reported_ = false;
};

std::string CudaConv2d::what() const {
  return "conv2d " + std::to_string(in_channels_) + "->" + std::to_string(options_.out_channels) + " channels, " +
         std::to_string(options_.kernel) + "x" + std::to_string(options_.kernel) + " kernel, on " +
         std::to_string(in_channels_) + "x" + std::to_string(in_height_) + "x" + std::to_string(in_width_) + " inputs";
}

std::unique_ptr<ConvPlan> CudaConv2d::describe(size_t n, Precision compute, ConvCandidates& candidates) const {
  auto plan = std::make_unique<ConvPlan>();
  plan->compute = compute;
  const size_t cout = options_.out_channels;
  const cudnnDataType_t type = data_type(compute);
  plan->x.set(n, in_channels_, in_height_, in_width_, type);
  plan->y.set(n, cout, out_height_, out_width_, type);
  plan->out.set(n, cout, out_height_, out_width_);
  plan->w.set(cout, group_in_channels(), options_.kernel, options_.kernel, type);
  for (ConvolutionDescriptor* conv : {&plan->forward_conv, &plan->data_conv, &plan->filter_conv}) {
    conv->set(options_.padding, options_.stride, options_.dilation, options_.groups, math_type(compute));
  }

  int dims[4] = {};
  DPTRAIN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->forward_conv.get(), plan->x.get(), plan->w.get(),
                                                            &dims[0], &dims[1], &dims[2], &dims[3]));
  if (static_cast<size_t>(dims[2]) != out_height_ || static_cast<size_t>(dims[3]) != out_width_) {
    throw DeviceError("conv2d: cuDNN computes a " + std::to_string(dims[2]) + "x" + std::to_string(dims[3]) +
                      " output where the layer expects " + std::to_string(out_height_) + "x" +
                      std::to_string(out_width_));
  }

  cudnnHandle_t h = cuda_.cudnn();
  int found = 0;
  std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  if (DPTRAIN_CUDNN_LISTED(cudnnGetConvolutionForwardAlgorithm_v7(h, plan->x.get(), plan->w.get(),
                                                                  plan->forward_conv.get(), plan->y.get(),
                                                                  static_cast<int>(fwd.size()), &found, fwd.data()))) {
    candidates.forward = to_candidates(fwd, found);
  }
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> data(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
  if (DPTRAIN_CUDNN_LISTED(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan->w.get(), plan->y.get(),
                                                                       plan->data_conv.get(), plan->x.get(),
                                                                       static_cast<int>(data.size()), &found,
                                                                       data.data()))) {
    candidates.backward_data = to_candidates(data, found);
  }
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> filter(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  if (DPTRAIN_CUDNN_LISTED(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan->x.get(), plan->y.get(),
                                                                         plan->filter_conv.get(), plan->w.get(),
                                                                         static_cast<int>(filter.size()), &found,
                                                                         filter.data()))) {
    candidates.backward_filter = to_candidates(filter, found);
  }
  return plan;
}

bool CudaConv2d::apply(ConvPlan& plan, const ConvAlgorithms& chosen, ConvCandidates& candidates) {
  plan.forward_algo = static_cast<cudnnConvolutionFwdAlgo_t>(chosen.forward.algorithm);
  plan.data_algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(chosen.backward_data.algorithm);
  plan.filter_algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(chosen.backward_filter.algorithm);
  plan.forward_conv.set_math_type(static_cast<cudnnMathType_t>(chosen.forward.math_type));
  plan.data_conv.set_math_type(static_cast<cudnnMathType_t>(chosen.backward_data.math_type));
  plan.filter_conv.set_math_type(static_cast<cudnnMathType_t>(chosen.backward_filter.math_type));

  // The heuristics' memory estimates can be below what the call asks for: ask each algorithm.
  cudnnHandle_t h = cuda_.cudnn();
  size_t fb = 0, db = 0, wb = 0;
  if (!DPTRAIN_CUDNN_LISTED(cudnnGetConvolutionForwardWorkspaceSize(
          h, plan.x.get(), plan.w.get(), plan.forward_conv.get(), plan.y.get(), plan.forward_algo, &fb))) {
    mark_not_supported(candidates.forward, chosen.forward.algorithm);
    return false;
  }
  if (!DPTRAIN_CUDNN_LISTED(cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, plan.w.get(), plan.y.get(), plan.data_conv.get(), plan.x.get(), plan.data_algo, &db))) {
    mark_not_supported(candidates.backward_data, chosen.backward_data.algorithm);
    return false;
  }
  if (!DPTRAIN_CUDNN_LISTED(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h, plan.x.get(), plan.y.get(), plan.filter_conv.get(), plan.w.get(), plan.filter_algo, &wb))) {
    mark_not_supported(candidates.backward_filter, chosen.backward_filter.algorithm);
    return false;
  }
  plan.workspace_bytes = std::max(fb, std::max(db, wb));
  workspace_.reserve(plan.workspace_bytes);
  return true;
}

ConvAlgorithmChoice CudaConv2d::choose(ConvPlan& plan, ConvCandidates& candidates, const ConvAlgorithmRules& rules) {
  // Each refusal marks one more candidate NotSupported, so this ends.
  for (;;) {
    ConvAlgorithmChoice choice = choose_conv_algorithms(candidates, rules);
    if (!choice.algorithms || apply(plan, *choice.algorithms, candidates)) return choice;
  }
}

const ConvPlan& CudaConv2d::plan(size_t n) {
  const ConvPlanKey key{n, cuda_.precision()};
  if (const ConvPlan* known = plans_.find(key)) return *known;

  const ConvAlgorithmRules rules{kMaxWorkspaceBytes, cuda_.determinism()};
  ConvCandidates candidates;
  std::unique_ptr<ConvPlan> made = describe(n, key.precision, candidates);
  ConvAlgorithmChoice choice = choose(*made, candidates, rules);
  if (!choice.algorithms) {
    const std::string why = std::string("cuDNN has ") + choice.missing + " in " + to_string(key.precision) + " (" +
                            device_where() + ")";
    const auto fallback = conv_fallback_precision(key.precision);
    if (!fallback) throw DeviceError(what() + ": " + why);
    ConvCandidates fallback_candidates;
    made = describe(n, *fallback, fallback_candidates);
    choice = choose(*made, fallback_candidates, rules);
    if (!choice.algorithms) {
      throw DeviceError(what() + ": " + why + ", nor in " + to_string(*fallback) + ": " + choice.missing);
    }
    if (!fallback_reported_) {
      std::fprintf(stderr, "dptrain: note: %s computes in %s: %s\n", what().c_str(), to_string(*fallback), why.c_str());
      fallback_reported_ = true;
    }
  }
  return plans_.insert(key, std::move(made));
}

void CudaConv2d::add_bias(const ConvPlan& p, Tensor& y, size_t n) {
  const float* bias = params_.at(1).data();
  if (y.dtype() == DType::BFloat16) {
    launch_add_channel_bias_bf16(y.raw(), bias, n, options_.out_channels, out_height_ * out_width_, cuda_.stream());
    return;
  }
  const float one = 1.0f;
  DPTRAIN_CUDNN_CHECK(cudnnAddTensor(cuda_.cudnn(), &one, bias_desc_.get(), bias, &one, p.out.get(), y.data()));
}

void CudaConv2d::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (n == 0) return;
  const ConvPlan& p = plan(n);
  const DType type = compute_type(p.compute);
  cudnnHandle_t h = cuda_.cudnn();
  cudaStream_t stream = cuda_.stream();
  const void* x_in = x_op_.read(x, type, stream);
  w_compute_ = w_op_.read(params_.at(0), type, stream);  // kept for backward
  w_compute_type_ = type;
  void* y_out = y_op_.write(y, type);
  const float one = 1.0f, zero = 0.0f;
  DPTRAIN_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x.get(), x_in, p.w.get(), w_compute_, p.forward_conv.get(),
                                              p.forward_algo, workspace_.get(), p.workspace_bytes, &zero, p.y.get(),
                                              y_out));
  y_op_.finish(y, type, stream);
  if (has_bias()) add_bias(p, y, n);
}

void CudaConv2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (n == 0) return;
  const ConvPlan& p = plan(n);
  const DType type = compute_type(p.compute);
  cudnnHandle_t h = cuda_.cudnn();
  cudaStream_t stream = cuda_.stream();
  Tensor& dw = grads_.at(0);
  const float one = 1.0f, zero = 0.0f;
  if (has_bias()) {
    if (dy.dtype() == DType::BFloat16) {
      launch_channel_sums_bf16(dy.raw(), grads_.at(1).data(), n, options_.out_channels, out_height_ * out_width_,
                               stream);
    } else {
      DPTRAIN_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, p.out.get(), dy.data(), &zero, bias_desc_.get(),
                                                       grads_.at(1).data()));
    }
  }
  // Everything below runs in order on one stream, so each converted operand may be reused once read.
  const void* x_in = x_op_.read(x, type, stream);
  const void* dy_in = y_op_.read(dy, type, stream);
  void* dw_out = dw_op_.write(dw, type);
  DPTRAIN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x.get(), x_in, p.y.get(), dy_in, p.filter_conv.get(),
                                                     p.filter_algo, workspace_.get(), p.workspace_bytes, &zero,
                                                     p.w.get(), dw_out));
  dw_op_.finish(dw, type, stream);
  if (!dx) return;
  // The filter as forward converted it, unless forward computed in another type (or never ran).
  const void* w_in = w_compute_ && w_compute_type_ == type ? w_compute_ : w_op_.read(params_.at(0), type, stream);
  void* dx_out = x_op_.write(*dx, type);
  DPTRAIN_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w.get(), w_in, p.y.get(), dy_in, p.data_conv.get(),
                                                   p.data_algo, workspace_.get(), p.workspace_bytes, &zero, p.x.get(),
                                                   dx_out));
  x_op_.finish(*dx, type, stream);
}

std::unique_ptr<Layer> make_cuda_conv2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaConv2d>(Conv2dOptions::read(options, input_shape), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(conv2d, cuda, make_cuda_conv2d);

}  // namespace dptrain
