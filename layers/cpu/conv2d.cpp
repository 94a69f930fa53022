// CPU conv2d: oneDNN's direct kernels where they apply (CpuConvolution), else per-sample im2col + BLAS
// GEMM (one per channel group) with samples spread over OpenMP threads, the reference the tests
// compare oneDNN with. With train.reproducible (Summation::Exact) either computes each sample alone
// on one thread, so that its output and gradients do not depend on the batch, threads or workers.
#include "layers/conv2d.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "layers/cpu/im2col.h"
#include "layers/cpu/int8_conv.h"
#include "layers/cpu/onednn_conv.h"
#include "layers/cpu/workspace.h"
#include "layers/registry.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Below this many input channels per group, oneDNN's float32 direct kernels lose to im2col + BLAS
// (a first layer on 1 to 4 channels: 10 to 40 GFLOP/s backward against 20 to 30 with im2col).
constexpr size_t kOneDnnMinGroupChannels = 8;

// Zeroes this thread's padded image buffer, whose border then stays zero for the whole call.
float* zeroed(PerThreadBuffers& buffers, size_t floats) {
  if (floats == 0) return nullptr;
  float* p = buffers.get(static_cast<size_t>(omp_get_thread_num()));
  std::fill(p, p + floats, 0.0f);
  return p;
}

// conv2d on the CPU. Through oneDNN where the layer has it; otherwise each thread unfolds its samples
// into its own column buffer and multiplies it with one single-threaded GEMM (OpenBLAS-OpenMP does
// not nest inside our parallel region).
class CpuConv2d final : public Conv2dLayer {
 public:
  CpuConv2d(const Conv2dOptions& options, const Shape& input_shape, CpuConvolution choice)
      : Conv2dLayer(options, input_shape) {
    geometry_ = {group_in_channels(), in_height_,  in_width_,  options_.kernel,  options_.stride,
                 options_.padding,    out_height_, out_width_, options_.dilation};
    const bool wanted = choice == CpuConvolution::OneDnn ||
                        (choice == CpuConvolution::Auto && group_in_channels() >= kOneDnnMinGroupChannels);
    if (wanted) onednn_ = OneDnnConvolution::make(shape(), has_bias(), &onednn_missing_);
    if (choice == CpuConvolution::OneDnn && !onednn_ && !int8_has_onednn()) {
      throw UsageError("cpu_convolution: onednn, but " + onednn_missing_ +
                       ": set cpu_convolution: auto (or im2col), or build with libdnnl-dev");
    }
  }

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;
  bool exact_gradients() const override { return true; }
  void use_int8(const Int8Weights& weights) override {
    int8_ = std::make_unique<Int8Convolution>(shape(), params_.at(0).data(), weights.scales, weights.input_range);
  }
  std::string int8_implementation() const override { return int8_ ? int8_->implementation() : ""; }
  std::string kernel() const override { return onednn_ ? onednn_->implementation() : "im2col + BLAS"; }

 private:
  bool has_bias() const { return options_.bias == BiasTerm::Enabled; }
  ConvShape shape() const {
    return {in_channels_,    in_height_,       in_width_,        options_.out_channels, options_.kernel, options_.stride,
            options_.padding, options_.dilation, options_.groups, out_height_,           out_width_};
  }
  // Whether this step runs oneDNN over the batch: it is there, and the step does not sum exactly
  // (an exact step runs oneDNN's micro-shard kernels).
  bool runs_onednn(const StepInfo& step) const { return onednn_ && step.summation != Summation::Exact; }
  // Summation::Exact: the samples one unit of work takes alone, on one thread: a micro-shard on
  // oneDNN in a training step (a single sample in evaluation, whose batches need not start on
  // micro-shard boundaries), a single sample on im2col.
  size_t exact_unit(const StepInfo& step, size_t n) const {
    if (!onednn_ || step.mode != Mode::Train) return 1;
    return std::max<size_t>(1, std::min(step.micro_shard ? step.micro_shard : n, n));
  }
  // Summation::Exact on oneDNN: units of `unit` samples through the micro-shard forward, units over threads.
  void forward_shards(const Tensor& x, Tensor& y, size_t n, size_t unit);
  // Floats of the padded copy unfold needs: none where it reads x directly.
  size_t padded_floats() const {
    return geometry_.padding == 0 || geometry_.is_same_size() ? 0 : geometry_.padded_size();
  }
  // Unfolds one channel group x (C / groups, H, W) of a sample into `col`: straight from x for a
  // same-size convolution, else via the thread's zero-bordered `padded` copy.
  void unfold(const float* x, float* padded, float* col) const;
  // For one sample xn (C, H, W) with output gradient dyn (Cout, Ho, Wo): adds its weight and bias
  // gradients to the thread's dw (Cout, C / groups * K * K) and db (Cout), and writes its input
  // gradient dxn (C, H, W) unless dxn is null. `col` and `padded` are the thread's buffers.
  void backward_sample(const float* xn, const float* dyn, float* dxn, float* col, float* padded, float* dw,
                       float* db) const;
  // The gradients bound to the layer = the sum of the first `threads` per-thread partial gradients.
  void sum_partial_gradients(size_t threads);
  // Summation::Exact: the weight and bias gradients of each unit (exact_unit: a micro-shard on
  // oneDNN, a sample on im2col), computed alone, are added exactly to the thread's exact sums, so
  // neither the thread nor the worker a unit lands on changes the bits.
  void backward_exact(const Tensor& x, const Tensor& dy, Tensor* dx, size_t unit);

  ConvGeometry geometry_;          // of one channel group: C / groups input channels
  PerThreadBuffers columns_;       // per thread: (C / groups * K * K, Ho * Wo) column matrix, reused for dcol
  PerThreadBuffers padded_;        // per thread: (C / groups, H + 2p, W + 2p) zero-bordered copy of one group
  PerThreadBuffers weight_grads_;  // per thread: (Cout, C / groups * K * K) weight gradient, then (Cout) bias
                                   // (Summation::Exact: kSampleGroup such rows)
  // Summation::Exact: units whose float gradients a thread holds before adding them exactly.
  static constexpr size_t kSampleGroup = 8;
  std::vector<ExactSums> exact_partials_;  // per thread, with Summation::Exact: weight then bias gradients
  std::unique_ptr<Int8Convolution> int8_;  // after use_int8: the int8 forward
  std::unique_ptr<OneDnnConvolution> onednn_;  // oneDNN's kernels, where CpuConvolution chose them
  std::string onednn_missing_;  // why oneDNN does not run this layer, where it was wanted
};

void CpuConv2d::unfold(const float* x, float* padded, float* col) const {
  if (geometry_.is_same_size()) {
    im2col_same_size(x, geometry_, col);
    return;
  }
  if (geometry_.padding == 0) {
    im2col(x, geometry_, col);
    return;
  }
  pad_image(x, geometry_, padded);
  im2col(padded, geometry_, col);
}

void CpuConv2d::forward(const Tensor& x, Tensor& y, const StepInfo& step) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (int8_) {
    int8_layer_forward(*int8_, *this, x, y, step, has_bias() ? params_.at(1).data() : nullptr);
    return;
  }
  if (runs_onednn(step)) {
    onednn_->forward(x.data(), n, params_.at(0).data(), has_bias() ? params_.at(1).data() : nullptr, y.data(),
                     step.mode == Mode::Train);
    return;
  }
  if (onednn_) {
    forward_shards(x, y, n, exact_unit(step, n));
    return;
  }
  const size_t cout = options_.out_channels, rows = geometry_.col_rows(), pixels = geometry_.col_cols();
  const size_t in_size = num_elements(input_shape_), out_size = cout * pixels;
  const size_t groups = options_.groups, group_cout = group_out_channels(), group_in = geometry_.image_size();
  const bool pointwise = geometry_.is_pointwise();
  const auto threads = static_cast<size_t>(omp_get_max_threads());
  const size_t padded_size = padded_floats();
  if (!pointwise) columns_.reserve(threads, rows * pixels);
  padded_.reserve(threads, padded_size);
  const float* w = params_.at(0).data();                         // (Cout, C / groups * K * K)
  const float* b = has_bias() ? params_.at(1).data() : nullptr;  // (Cout)
  const float* xs = x.data();                                    // (N, C, H, W)
  float* ys = y.data();                                          // (N, Cout, Ho, Wo)

#pragma omp parallel
  {
    float* col = pointwise ? nullptr : columns_.get(static_cast<size_t>(omp_get_thread_num()));
    float* padded = zeroed(padded_, padded_size);
#pragma omp for schedule(static)
    for (size_t s = 0; s < n; ++s) {
      const float* xn = xs + s * in_size;
      float* yn = ys + s * out_size;
      if (b) {
        for (size_t c = 0; c < cout; ++c) std::fill(yn + c * pixels, yn + (c + 1) * pixels, b[c]);
      }
      // y_g (Cout / groups, P) = W_g (Cout / groups, C / groups * K * K) * col_g
      for (size_t g = 0; g < groups; ++g) {
        const float* xg = xn + g * group_in;
        if (!pointwise) unfold(xg, padded, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(group_cout), static_cast<int>(pixels),
                    static_cast<int>(rows), 1.0f, w + g * group_cout * rows, static_cast<int>(rows),
                    pointwise ? xg : col, static_cast<int>(pixels), b ? 1.0f : 0.0f, yn + g * group_cout * pixels,
                    static_cast<int>(pixels));
      }
    }
  }
}

void CpuConv2d::forward_shards(const Tensor& x, Tensor& y, size_t n, size_t unit) {
  const size_t in_size = num_elements(input_shape_), out_size = num_elements(output_shape_);
  const float* b = has_bias() ? params_.at(1).data() : nullptr;
  const float* xs = x.data();
  float* ys = y.data();
  const size_t units = (n + unit - 1) / unit;
  onednn_->prepare_shards(params_.at(0).data(), unit, n - (units - 1) * unit);
#pragma omp parallel for schedule(static)
  for (size_t u = 0; u < units; ++u) {
    const size_t s = u * unit;
    onednn_->forward_shard(xs + s * in_size, std::min(unit, n - s), b, ys + s * out_size);
  }
}

void CpuConv2d::backward_sample(const float* xn, const float* dyn, float* dxn, float* col, float* padded, float* dw,
                                float* db) const {
  const size_t cout = options_.out_channels, rows = geometry_.col_rows(), pixels = geometry_.col_cols();
  const size_t groups = options_.groups, group_cout = group_out_channels(), group_in = geometry_.image_size();
  const bool pointwise = geometry_.is_pointwise();
  for (size_t g = 0; g < groups; ++g) {
    const float* xg = xn + g * group_in;
    const float* dyg = dyn + g * group_cout * pixels;  // (Cout / groups, P)
    float* dwg = dw + g * group_cout * rows;           // (Cout / groups, C / groups * K * K)
    const float* cols = xg;
    if (!pointwise) {
      unfold(xg, padded, col);
      cols = col;
    }
    // dW_g += dy_g (Cout / groups, P) * col_g^T (P, C / groups * K * K)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(group_cout), static_cast<int>(rows),
                static_cast<int>(pixels), 1.0f, dyg, static_cast<int>(pixels), cols, static_cast<int>(pixels), 1.0f,
                dwg, static_cast<int>(rows));
    if (!dxn) continue;
    // dcol (C / groups * K * K, P) = W_g^T * dy_g; the column buffer is free again.
    float* dxg = dxn + g * group_in;
    float* dcol = pointwise ? dxg : col;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(pixels),
                static_cast<int>(group_cout), 1.0f, params_.at(0).data() + g * group_cout * rows,
                static_cast<int>(rows), dyg, static_cast<int>(pixels), 0.0f, dcol, static_cast<int>(pixels));
    if (!pointwise) {
      std::fill(dxg, dxg + group_in, 0.0f);
      col2im_add(dcol, geometry_, dxg);
    }
  }
  for (size_t c = 0; c < cout; ++c) {
    const float* row = dyn + c * pixels;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t p = 0; p < pixels; ++p) sum += row[p];
    db[c] += sum;
  }
}

void CpuConv2d::sum_partial_gradients(size_t threads) {
  const size_t cout = options_.out_channels, wsize = cout * geometry_.col_rows();
  float* gw = grads_.at(0).data();
  float* gb = has_bias() ? grads_.at(1).data() : nullptr;
  const size_t total = gb ? wsize + cout : wsize;
  std::vector<const float*> partials(threads);
  for (size_t t = 0; t < threads; ++t) partials[t] = weight_grads_.get(t);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < total; ++i) {
    float sum = 0.0f;
    for (size_t t = 0; t < threads; ++t) sum += partials[t][i];
    if (i < wsize) {
      gw[i] = sum;
    } else {
      gb[i - wsize] = sum;
    }
  }
}

void CpuConv2d::backward_exact(const Tensor& x, const Tensor& dy, Tensor* dx, size_t unit) {
  const size_t n = x.dim(0);
  const size_t cout = options_.out_channels, rows = geometry_.col_rows(), pixels = geometry_.col_cols();
  const size_t in_size = num_elements(input_shape_), out_size = cout * pixels;
  const size_t wsize = cout * rows, stride = wsize + cout, total = wsize + (has_bias() ? cout : 0);
  const auto threads = static_cast<size_t>(omp_get_max_threads());
  const size_t padded_size = onednn_ ? 0 : padded_floats();
  if (!onednn_) columns_.reserve(threads, rows * pixels);
  padded_.reserve(threads, padded_size);
  weight_grads_.reserve(threads, kSampleGroup * stride);
  while (exact_partials_.size() < threads) exact_partials_.emplace_back(total);
  const size_t units = (n + unit - 1) / unit;
  if (onednn_) onednn_->prepare_shards(params_.at(0).data(), unit, n - (units - 1) * unit);
  const float* xs = x.data();
  const float* dys = dy.data();
  float* dxs = dx ? dx->data() : nullptr;
  size_t used_threads = 1;

#pragma omp parallel
  {
    const auto t = static_cast<size_t>(omp_get_thread_num());
#pragma omp single
    used_threads = static_cast<size_t>(omp_get_num_threads());
    float* col = onednn_ ? nullptr : columns_.get(t);
    float* padded = zeroed(padded_, padded_size);
    float* group = weight_grads_.get(t);  // up to kSampleGroup samples' gradients, one row each
    ExactSums& sums = exact_partials_[t];
    sums.zero();
    size_t held = 0;
    auto add_held = [&] {
      exact::add_rows(group, held, stride, sums.span(), ExactScale::Gradient);
      held = 0;
    };
#pragma omp for schedule(static) nowait
    for (size_t u = 0; u < units; ++u) {
      const size_t s = u * unit;
      float* dw = group + held * stride;
      float* dxn = dxs ? dxs + s * in_size : nullptr;
      if (onednn_) {  // writes the unit's gradients
        onednn_->backward_shard(xs + s * in_size, dys + s * out_size, std::min(unit, n - s), dxn, dw,
                                has_bias() ? dw + wsize : nullptr);
      } else {  // adds the sample's
        std::fill(dw, dw + stride, 0.0f);
        backward_sample(xs + s * in_size, dys + s * out_size, dxn, col, padded, dw, dw + wsize);
      }
      if (++held == kSampleGroup) add_held();
    }
    if (held) add_held();
  }
  ExactSums& first = exact_partials_[0];
  for (size_t t = 1; t < used_threads; ++t) {
    exact::add_sums(first.span(), exact_partials_[t].data());
  }
  const int64_t* all = first.data();
  std::copy(all, all + wsize, exact_grads_.at(0).sums);
  if (has_bias()) std::copy(all + wsize, all + total, exact_grads_.at(1).sums);
}

void CpuConv2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (step.summation == Summation::Exact) {
    backward_exact(x, dy, dx, exact_unit(step, n));
    return;
  }
  if (runs_onednn(step)) {
    onednn_->backward(x.data(), dy.data(), n, params_.at(0).data(), dx ? dx->data() : nullptr, grads_.at(0).data(),
                      has_bias() ? grads_.at(1).data() : nullptr);
    return;
  }
  const size_t cout = options_.out_channels, rows = geometry_.col_rows(), pixels = geometry_.col_cols();
  const size_t in_size = num_elements(input_shape_), out_size = cout * pixels;
  const size_t wsize = cout * rows;
  const auto threads = static_cast<size_t>(omp_get_max_threads());
  const size_t padded_size = padded_floats();
  columns_.reserve(threads, rows * pixels);
  padded_.reserve(threads, padded_size);
  weight_grads_.reserve(threads, wsize + cout);
  const float* xs = x.data();              // (N, C, H, W)
  const float* dys = dy.data();            // (N, Cout, Ho, Wo)
  float* dxs = dx ? dx->data() : nullptr;  // (N, C, H, W)
  size_t used_threads = 1;

#pragma omp parallel
  {
    const auto t = static_cast<size_t>(omp_get_thread_num());
#pragma omp single
    used_threads = static_cast<size_t>(omp_get_num_threads());
    float* col = columns_.get(t);
    float* padded = zeroed(padded_, padded_size);
    float* dw = weight_grads_.get(t);  // (Cout, C / groups * K * K) then (Cout)
    std::fill(dw, dw + wsize + cout, 0.0f);
#pragma omp for schedule(static)
    for (size_t s = 0; s < n; ++s) {
      backward_sample(xs + s * in_size, dys + s * out_size, dxs ? dxs + s * in_size : nullptr, col, padded, dw,
                      dw + wsize);
    }
  }
  // Threads that got no samples hold zeros.
  sum_partial_gradients(used_threads);
}

std::unique_ptr<Layer> make_cpu_conv2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  const auto* cpu = dynamic_cast<const CpuBackend*>(&backend);
  return std::make_unique<CpuConv2d>(Conv2dOptions::read(options, input_shape), input_shape,
                                     cpu ? cpu->convolution() : CpuConvolution::Auto);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(conv2d, cpu, make_cpu_conv2d);

}  // namespace dptrain
