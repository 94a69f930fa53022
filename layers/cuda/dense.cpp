// CUDA dense: cuBLAS SGEMMs over the whole batch (TF32 when the context allows it), or with
// precision bf16 cublasGemmEx on bf16 operands with float32 sums: it reads bf16 activations x (and
// writes dx in bf16) and writes float32 y (read by the loss, or converted by the model for a bf16
// consumer), so dy arrives in float32 and is rounded to bf16 once per backward pass. The bf16 copy
// of the weights is made once per forward pass and reused by backward; the weight gradient is
// float32. The bias is a float32 rank-1 GEMM with a ones vector forward and a GEMV backward.
#include "layers/dense.h"

#include <memory>

#include "layers/registry.h"
#include "runtime/core/cuda/operand_buffer.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// c (m, n) = op(a) (m, k) * op(b) (k, n), column-major, bf16 operands, float32 sums, the result c
// of `c_type` (float32 or bf16, rounded once).
void gemm_bf16(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, const void* a,
               int lda, const void* b, int ldb, void* c, DType c_type, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t c_cuda = c_type == DType::BFloat16 ? CUDA_R_16BF : CUDA_R_32F;
  DPTRAIN_CUBLAS_CHECK(cublasGemmEx(h, op_a, op_b, m, n, k, &one, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb, &zero, c,
                                    c_cuda, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// dense on the GPU. Row-major (N, F) buffers are column-major (F, N) to cuBLAS, so every
// product below is the transposed one: y^T = W x^T, dW^T = x^T dy, dx^T = W^T dy^T.
class CudaDense final : public DenseLayer {
 public:
  CudaDense(const DenseOptions& options, const Shape& input_shape, CudaContext& cuda)
      : DenseLayer(options, input_shape), cuda_(cuda) {}

  // bf16 in and float32 out under precision bf16; float32 otherwise.
  ActivationTypes activation_types(DType) const override {
    if (cuda_.precision() == Precision::Bf16) return {DType::BFloat16, DType::Float32};
    return {};
  }
  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
  // (n) ones on the device, for the bias terms.
  const float* ones(size_t n);

  CudaContext& cuda_;
  DeviceBuffer ones_;
  size_t ones_count_ = 0;
  // bf16 operands where the tensors are float32: the input x, the weights and the output gradient dy.
  OperandBuffer x16_, w16_, dy16_;
  const void* w16_made_ = nullptr;  // the weights in bf16 as the last forward pass made them
};

const float* CudaDense::ones(size_t n) {
  if (n > ones_count_) {
    auto* p = static_cast<float*>(ones_.reserve(n * sizeof(float)));
    launch_fill(p, n, 1.0f, cuda_.stream());
    ones_count_ = n;
  }
  return static_cast<const float*>(ones_.get());
}

void CudaDense::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (n == 0) return;
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units), b = static_cast<int>(n);
  cublasHandle_t h = cuda_.cublas();
  const Tensor& w = params_.at(0);
  const float one = 1.0f, zero = 0.0f;
  // y^T (u, n) = W^T' (u, f) * x^T (f, n)
  if (cuda_.precision() == Precision::Bf16) {
    w16_made_ = w16_.read(w, DType::BFloat16, cuda_.stream());  // kept for backward
    gemm_bf16(h, CUBLAS_OP_T, CUBLAS_OP_N, u, b, f, w16_made_, f, x16_.read(x, DType::BFloat16, cuda_.stream()), f,
              y.data(), DType::Float32, u);
  } else {
    DPTRAIN_CUBLAS_CHECK(
        cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, u, b, f, &one, w.data(), f, x.data(), f, &zero, y.data(), u));
  }
  if (has_bias()) {
    // y^T (u, n) += bias (u, 1) * ones (1, n)
    DPTRAIN_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, u, b, 1, &one, params_.at(1).data(), u, ones(n), 1,
                                     &one, y.data(), u));
  }
}

void CudaDense::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units), b = static_cast<int>(n);
  cublasHandle_t h = cuda_.cublas();
  const bool bf16 = cuda_.precision() == Precision::Bf16;
  const void* dy16 = bf16 ? dy16_.read(dy, DType::BFloat16, cuda_.stream()) : nullptr;
  const float one = 1.0f, zero = 0.0f;
  // dW^T (f, u) = x^T (f, n) * dy (n, u)
  if (bf16) {
    gemm_bf16(h, CUBLAS_OP_N, CUBLAS_OP_T, f, u, b, x16_.read(x, DType::BFloat16, cuda_.stream()), f, dy16, u,
              grads_.at(0).data(), DType::Float32, f);
  } else {
    DPTRAIN_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, f, u, b, &one, x.data(), f, dy.data(), u, &zero,
                                     grads_.at(0).data(), f));
  }
  if (has_bias()) {
    // db (u) = dy^T (u, n) * ones (n)
    DPTRAIN_CUBLAS_CHECK(
        cublasSgemv(h, CUBLAS_OP_N, u, b, &one, dy.data(), u, ones(n > 0 ? n : 1), 1, &zero, grads_.at(1).data(), 1));
  }
  if (dx && n > 0) {
    // dx^T (f, n) = W^T (f, u) * dy^T (u, n)
    const Tensor& w = params_.at(0);
    if (bf16) {
      // The weights as forward rounded them (they change only after backward).
      const void* w16 = w16_made_ ? w16_made_ : w16_.read(w, DType::BFloat16, cuda_.stream());
      gemm_bf16(h, CUBLAS_OP_N, CUBLAS_OP_N, f, b, u, w16, f, dy16, u, dx->raw(), dx->dtype(), f);
    } else {
      DPTRAIN_CUBLAS_CHECK(
          cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, f, b, u, &one, w.data(), f, dy.data(), u, &zero, dx->data(), f));
    }
  }
}

std::unique_ptr<Layer> make_cuda_dense(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaDense>(DenseOptions::read(options), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(dense, cuda, make_cuda_dense);

}  // namespace dptrain
