// CPU dense: one BLAS GEMM over the whole batch, outside any parallel region so BLAS uses every thread
// (with Summation::Exact: one single-threaded GEMM per micro-shard for y and dx, micro-shards spread over
// threads, and the weight gradient by exact::add_shard_products, column blocks spread over threads).
#include "layers/dense.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "layers/cpu/int8_conv.h"
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
  void use_int8(const Int8Weights& weights) override {
    ConvShape shape;  // a 1x1 convolution over (F, 1, 1)
    shape.in_channels = in_features_;
    shape.out_channels = options_.units;
    int8_ = std::make_unique<Int8Convolution>(shape, params_.at(0).data(), weights.scales, weights.input_range);
  }
  std::string int8_implementation() const override { return int8_ ? int8_->implementation() : ""; }

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
  // y[first, first + n) from x's rows [first, first + n).
  void forward_rows(const float* x, float* y, size_t n) const;
  // Writes the float weight gradient (units, F) and bias gradient (units) of rows [0, n) to dw, db.
  void parameter_gradients(const float* x, const float* dy, size_t n, float* dw, float* db) const;
  // dx (n, F) = dy (n, units) * W.
  void input_gradient(const float* dy, float* dx, size_t n) const;
  // Summation::Exact: each micro-shard's gradient in float, added exactly; forward and dx run
  // micro-shard by micro-shard too, so every GEMM has the same shape whatever the local batch.
  void backward_exact(const Tensor& x, const Tensor& dy, Tensor* dx, size_t micro_shard);

  // Summation::Exact: threads share the weight gradient in blocks of this many columns (input features).
  static constexpr size_t kBlockColumns = 64;
  // Micro-shards whose float bias gradients are held at once before they are added exactly.
  static constexpr size_t kShardGroup = 8;
  std::vector<float> bias_parts_;  // (kShardGroup, units), Exact only
  std::unique_ptr<Int8Convolution> int8_;  // after use_int8: the int8 forward
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
  if (int8_) {
    int8_layer_forward(*int8_, *this, x, y, step, has_bias() ? params_.at(1).data() : nullptr);
    return;
  }
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
  const size_t shards = (n + micro_shard - 1) / micro_shard;
  const auto blocks = static_cast<int64_t>((f + kBlockColumns - 1) / kBlockColumns);
  bias_parts_.resize(kShardGroup * u);
  const ExactSpan dw = exact_grads_.at(0);
#pragma omp parallel
  {
    // dW (units, F): each micro-shard's dy^T x computed and added exactly in one pass, a block of
    // columns at a time; the terms do not depend on how the blocks fall to threads.
#pragma omp for schedule(static) nowait
    for (int64_t block = 0; block < blocks; ++block) {
      const size_t first = static_cast<size_t>(block) * kBlockColumns, cols = std::min(kBlockColumns, f - first);
      exact::add_shard_products(dy.data(), u, u, x.data() + first, f, cols, n, micro_shard,
                                {dw.sums + first, (u - 1) * f + cols}, f, ExactScale::Gradient,
                                exact::Start::Fresh);
    }
    if (has_bias()) {
      // The bias gradient: each micro-shard's column sums of dy, in sample order, added exactly.
#pragma omp single nowait
      {
        float* db = bias_parts_.data();
        for (size_t group = 0; group < shards; group += kShardGroup) {
          const size_t count = std::min(kShardGroup, shards - group);
          for (size_t k = 0; k < count; ++k) {
            const size_t s = (group + k) * micro_shard, rows = std::min(micro_shard, n - s);
            float* out = db + k * u;
            std::fill(out, out + u, 0.0f);
            for (size_t r = 0; r < rows; ++r) {
              const float* row = dy.data() + (s + r) * u;
              for (size_t j = 0; j < u; ++j) out[j] += row[j];
            }
          }
          exact::add_rows(db, count, u, exact_grads_.at(1), ExactScale::Gradient,
                          group == 0 ? exact::Start::Fresh : exact::Start::Add);
        }
      }
    }
    if (dx) {
#pragma omp for schedule(static)
      for (int64_t k = 0; k < static_cast<int64_t>(shards); ++k) {
        const size_t s = static_cast<size_t>(k) * micro_shard;
        input_gradient(dy.data() + s * u, dx->data() + s * f, std::min(micro_shard, n - s));
      }
    }
  }
}

std::unique_ptr<Layer> make_cpu_dense(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuDense>(DenseOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(dense, cpu, make_cpu_dense);

}  // namespace dptrain
