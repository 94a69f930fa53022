// CPU dense: one BLAS GEMM over the whole batch, outside any parallel region so BLAS uses every thread
// (with Summation::Exact: one single-threaded GEMM per micro-shard, micro-shards spread over threads).
#include "layers/dense.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <memory>

#include "layers/cpu/workspace.h"
#include "layers/registry.h"

namespace dptrain {

namespace {

// dense on the CPU.
class CpuDense final : public DenseLayer {
 public:
  using DenseLayer::DenseLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;
  bool exact_gradients() const override { return true; }

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
  // y[first, first + n) from x's rows [first, first + n).
  void forward_rows(const float* x, float* y, size_t n) const;
  // Writes the float weight gradient (units, F) and bias gradient (units) of rows [0, n) to dw, db.
  void parameter_gradients(const float* x, const float* dy, size_t n, float* dw, float* db) const;
  // dx (n, F) = dy (n, units) * W.
  void input_gradient(const float* dy, float* dx, size_t n) const;
  // Summation::Exact: each micro-shard's gradient in float (one GEMM over its samples), added
  // exactly; forward and dx run micro-shard by micro-shard too, so every GEMM has the same shape
  // whatever the local batch.
  void backward_exact(const Tensor& x, const Tensor& dy, Tensor* dx, size_t micro_shard);

  PerThreadBuffers shard_grads_;         // per thread: one micro-shard's (units * F + units) gradients, Exact only
  std::vector<ExactSums> exact_partials_;  // per thread: its exact sums of them
};

void CpuDense::forward_rows(const float* x, float* y, size_t n) const {
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units);
  if (has_bias()) {
    const float* b = params_.at(1).data();  // (units)
    for (size_t s = 0; s < n; ++s) std::copy(b, b + options_.units, y + s * options_.units);
  }
  // y (N, units) = x (N, F) * W^T (F, units) [+ y]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), u, f, 1.0f, x, f, params_.at(0).data(), f,
              has_bias() ? 1.0f : 0.0f, y, u);
}

void CpuDense::forward(const Tensor& x, Tensor& y, const StepInfo& step) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (step.summation != Summation::Exact) {
    forward_rows(x.data(), y.data(), n);
    return;
  }
  // One single-threaded GEMM per micro-shard: OpenBLAS's own threads split a GEMM differently for
  // each thread count, and the split changes its rounding.
  const size_t rows = step.micro_shard ? step.micro_shard : n;
  const auto shards = static_cast<int64_t>((n + rows - 1) / rows);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < shards; ++k) {
    const size_t first = static_cast<size_t>(k) * rows;
    forward_rows(x.data() + first * in_features_, y.data() + first * options_.units, std::min(rows, n - first));
  }
}

void CpuDense::parameter_gradients(const float* x, const float* dy, size_t n, float* dw, float* db) const {
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units);
  // dW (units, F) = dy^T (units, N) * x (N, F)
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, u, f, static_cast<int>(n), 1.0f, dy, u, x, f, 0.0f, dw, f);
  if (!has_bias()) return;
  std::fill(db, db + options_.units, 0.0f);
  for (size_t s = 0; s < n; ++s) {
    const float* row = dy + s * options_.units;
#pragma omp simd
    for (size_t j = 0; j < options_.units; ++j) db[j] += row[j];
  }
}

void CpuDense::input_gradient(const float* dy, float* dx, size_t n) const {
  const int f = static_cast<int>(in_features_), u = static_cast<int>(options_.units);
  // dx (N, F) = dy (N, units) * W (units, F)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), f, u, 1.0f, dy, u,
              params_.at(0).data(), f, 0.0f, dx, f);
}

void CpuDense::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (step.summation == Summation::Exact) {
    backward_exact(x, dy, dx, step.micro_shard ? step.micro_shard : n);
    return;
  }
  parameter_gradients(x.data(), dy.data(), n, grads_.at(0).data(), has_bias() ? grads_.at(1).data() : nullptr);
  if (dx) input_gradient(dy.data(), dx->data(), n);
}

void CpuDense::backward_exact(const Tensor& x, const Tensor& dy, Tensor* dx, size_t micro_shard) {
  const size_t n = x.dim(0), f = in_features_, u = options_.units;
  const size_t wsize = u * f, total = wsize + (has_bias() ? u : 0);
  const auto threads = static_cast<size_t>(omp_get_max_threads());
  shard_grads_.reserve(threads, wsize + u);
  while (exact_partials_.size() < threads) exact_partials_.emplace_back(total);
  const auto shards = static_cast<int64_t>((n + micro_shard - 1) / micro_shard);
  size_t used_threads = 1;
  // Micro-shards spread over threads, each with single-threaded GEMMs (see forward).
#pragma omp parallel
  {
    const auto t = static_cast<size_t>(omp_get_thread_num());
#pragma omp single
    used_threads = static_cast<size_t>(omp_get_num_threads());
    float* dw = shard_grads_.get(t);
    ExactSums& sums = exact_partials_[t];
    sums.zero();
#pragma omp for schedule(static)
    for (int64_t k = 0; k < shards; ++k) {
      const size_t first = static_cast<size_t>(k) * micro_shard, rows = std::min(micro_shard, n - first);
      parameter_gradients(x.data() + first * f, dy.data() + first * u, rows, dw, dw + wsize);
      sums.add(dw, ExactScale::Gradient);
      if (dx) input_gradient(dy.data() + first * u, dx->data() + first * f, rows);
    }
    sums.carry();
  }
  ExactSums& first = exact_partials_[0];
  for (size_t t = 1; t < used_threads; ++t) {
    exact::add_sums(first.span(), exact_partials_[t].span().hi, exact_partials_[t].span().lo);
  }
  const ExactSpan all = first.span();
  std::copy(all.hi, all.hi + wsize, exact_grads_.at(0).hi);
  std::copy(all.lo, all.lo + wsize, exact_grads_.at(0).lo);
  if (has_bias()) {
    std::copy(all.hi + wsize, all.hi + total, exact_grads_.at(1).hi);
    std::copy(all.lo + wsize, all.lo + total, exact_grads_.at(1).lo);
  }
}

std::unique_ptr<Layer> make_cpu_dense(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuDense>(DenseOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(dense, cpu, make_cpu_dense);

}  // namespace dptrain
