// CPU dense: one BLAS GEMM over the whole batch, outside any parallel region so BLAS uses every thread.
#include "layers/dense.h"

#include <cblas.h>

#include <algorithm>
#include <memory>

#include "layers/registry.h"

namespace dptrain {

namespace {

// dense on the CPU.
class CpuDense final : public DenseLayer {
 public:
  using DenseLayer::DenseLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
};

void CpuDense::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units);
  float* ys = y.data();  // (N, units)
  if (has_bias()) {
    const float* b = params_.at(1).data();  // (units)
    for (size_t s = 0; s < n; ++s) std::copy(b, b + options_.units, ys + s * options_.units);
  }
  // y (N, units) = x (N, F) * W^T (F, units) [+ y]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), u, f, 1.0f, x.data(), f,
              params_.at(0).data(), f, has_bias() ? 1.0f : 0.0f, ys, u);
}

void CpuDense::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units);
  const float* dys = dy.data();  // (N, units)
  // dW (units, F) = dy^T (units, N) * x (N, F)
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, u, f, static_cast<int>(n), 1.0f, dys, u, x.data(), f, 0.0f,
              grads_.at(0).data(), f);
  if (has_bias()) {
    float* db = grads_.at(1).data();  // (units)
    std::fill(db, db + options_.units, 0.0f);
    for (size_t s = 0; s < n; ++s) {
      const float* row = dys + s * options_.units;
#pragma omp simd
      for (size_t j = 0; j < options_.units; ++j) db[j] += row[j];
    }
  }
  // dx (N, F) = dy (N, units) * W (units, F)
  if (dx) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), f, u, 1.0f, dys, u,
                params_.at(0).data(), f, 0.0f, dx->data(), f);
  }
}

std::unique_ptr<Layer> make_cpu_dense(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuDense>(DenseOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(dense, cpu, make_cpu_dense);

}  // namespace dptrain
