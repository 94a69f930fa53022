// CPU max_pool2d: (sample, channel) planes spread over OpenMP threads; forward records each window's argmax. It
// can absorb a relu before it (Layer::absorb_input_relu), so that a conv2d -> relu -> max_pool2d chain
// makes one pass over the convolution's output instead of three.
#include "layers/max_pool2d.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/errors.h"
#include "runtime/core/kernel_dispatch.h"

namespace dptrain {

namespace {

// `when ? yes : no` for a 0/1 condition, written with bit masks: GCC does not if-convert float
// selects under its default -ftrapping-math, and without this the 2x2 loop neither vectorises nor
// avoids branch mispredictions.
inline float select(int32_t when, float yes, float no) {
  int32_t y, n;
  std::memcpy(&y, &yes, sizeof y);
  std::memcpy(&n, &no, sizeof n);
  const int32_t mask = -when;
  const int32_t bits = (y & mask) | (n & ~mask);
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// What forward reads of an input element: the element, or relu of it (`x > 0 ? x : 0`, as the relu
// layer computes it) where the layer absorbed a relu.
template <bool kRelu>
inline float read(const float* at) {
  const float x = *at;
  return kRelu ? select(x > 0.0f, x, 0.0f) : x;
}

// Output rows narrower than this take the offset table (max_pool_2x2_table) instead of a vector loop per
// row: a row of 7 or 14 outputs leaves a vector of 8 mostly or wholly to scalar code. Measured: 2.5
// and 1.4 times faster on planes of 14 and 28, level from 56 on.
constexpr size_t kNarrowRow = 16;

// The maximum of one 2x2 window whose top-left element is in[k] (rows `width` apart) into *out, and
// its index within the plane into *at. Ties go to the first element in row-major order.
template <bool kRelu>
[[gnu::always_inline]] inline void max_of_2x2(const float* in, int32_t k, int32_t width, float* out, int32_t* at) {
  const float a = read<kRelu>(in + k), b = read<kRelu>(in + k + 1);
  const float c = read<kRelu>(in + k + width), d = read<kRelu>(in + k + width + 1);
  const int32_t right_top = b > a, right_bottom = d > c;
  const float top = select(right_top, b, a), bottom = select(right_bottom, d, c);
  const int32_t lower = bottom > top;
  *out = select(lower, bottom, top);
  *at = k + lower * (width + right_bottom) + (1 - lower) * right_top;
}

// 2x2, stride-2, unpadded max-pooling of `planes` planes of in_plane inputs and out_plane outputs,
// one loop over each plane's outputs: offsets[o] is output o's window's top-left element.
DPTRAIN_CPU_KERNEL void max_pool_2x2_table(const float* xs, float* ys, int32_t* arg, size_t planes, size_t in_plane,
                                           size_t out_plane, int32_t width, const int32_t* offsets, bool relu) {
  for (size_t p = 0; p < planes; ++p) {
    const float* in = xs + p * in_plane;
    float* out = ys + p * out_plane;
    int32_t* at = arg + p * out_plane;
    if (relu) {
#pragma omp simd
      for (size_t o = 0; o < out_plane; ++o) max_of_2x2<true>(in, offsets[o], width, out + o, at + o);
    } else {
#pragma omp simd
      for (size_t o = 0; o < out_plane; ++o) max_of_2x2<false>(in, offsets[o], width, out + o, at + o);
    }
  }
}

// max_pool2d on the CPU.
class CpuMaxPool2d final : public MaxPool2dLayer {
 public:
  using MaxPool2dLayer::MaxPool2dLayer;

  bool absorb_input_relu() override { return input_relu_ = true; }
  bool absorbs_input_relu() const override { return input_relu_; }

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  // Forward over planes [0, planes), reading relu(x) where kRelu.
  template <bool kRelu>
  void forward_planes(const float* xs, float* ys, size_t planes);

  bool input_relu_ = false;  // absorb_input_relu() accepted
  // Plain 2x2 windows on narrow rows: each output's window's top-left element within its plane.
  std::vector<int32_t> window_offsets_;  // (Ho, Wo)
  // Forward's choice for each output: the index within its (H, W) input plane of the window maximum.
  std::vector<int32_t> argmax_;  // (N, C, Ho, Wo)
  size_t argmax_batch_ = 0;      // N of the forward pass that filled argmax_
};

void CpuMaxPool2d::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  const size_t planes = n * channels_, out_plane = out_height_ * out_width_;
  if (argmax_.size() < planes * out_plane) argmax_.resize(planes * out_plane);
  argmax_batch_ = n;
  if (input_relu_) {
    forward_planes<true>(x.data(), y.data(), planes);
  } else {
    forward_planes<false>(x.data(), y.data(), planes);
  }
}

template <bool kRelu>
void CpuMaxPool2d::forward_planes(const float* xs, float* ys, size_t planes) {
  // xs (N, C, H, W), ys and argmax_ (N, C, Ho, Wo)
  const size_t in_plane = in_height_ * in_width_, out_plane = out_height_ * out_width_;
  int32_t* arg = argmax_.data();
  const bool plain_2x2 = options_.kernel == 2 && options_.stride == 2 && options_.padding == 0;
  const auto width = static_cast<int32_t>(in_width_);
  if (plain_2x2 && out_width_ < kNarrowRow) {
    if (window_offsets_.empty()) {
      for (size_t oy = 0; oy < out_height_; ++oy) {
        for (size_t ox = 0; ox < out_width_; ++ox) {
          window_offsets_.push_back(static_cast<int32_t>(2 * (oy * in_width_ + ox)));
        }
      }
    }
    for_each_thread_share(planes, 2, [&](size_t begin, size_t end) {
      max_pool_2x2_table(xs + begin * in_plane, ys + begin * out_plane, arg + begin * out_plane, end - begin, in_plane,
                         out_plane, width, window_offsets_.data(), kRelu);
    });
    return;
  }

#pragma omp parallel for schedule(static)
  for (size_t p = 0; p < planes; ++p) {
    const float* in = xs + p * in_plane;
    float* out = ys + p * out_plane;
    int32_t* idx = arg + p * out_plane;
    if (plain_2x2) {  // wide rows: no clipping, branch-free so that it vectorises
      for (size_t oy = 0; oy < out_height_; ++oy) {
        const auto base = static_cast<int32_t>(2 * oy * in_width_);
        float* o = out + oy * out_width_;
        int32_t* at = idx + oy * out_width_;
#pragma omp simd
        for (size_t ox = 0; ox < out_width_; ++ox) {
          max_of_2x2<kRelu>(in, base + 2 * static_cast<int32_t>(ox), width, o + ox, at + ox);
        }
      }
      continue;
    }
    for (size_t oy = 0; oy < out_height_; ++oy) {
      const Span rows = window(oy, in_height_);
      for (size_t ox = 0; ox < out_width_; ++ox) {
        const Span cols = window(ox, in_width_);
        size_t at = rows.begin * in_width_ + cols.begin;
        float best = read<kRelu>(in + at);
        for (size_t iy = rows.begin; iy < rows.end; ++iy) {
          for (size_t ix = cols.begin; ix < cols.end; ++ix) {
            const size_t i = iy * in_width_ + ix;
            const float v = read<kRelu>(in + i);
            if (v > best) best = v, at = i;
          }
        }
        out[oy * out_width_ + ox] = best;
        idx[oy * out_width_ + ox] = static_cast<int32_t>(at);
      }
    }
  }
}

void CpuMaxPool2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (!dx) return;
  if (n != argmax_batch_) {
    throw ShapeError("max_pool2d: backward for a batch of " + std::to_string(n) + " after a forward of " +
                     std::to_string(argmax_batch_));
  }
  const size_t planes = n * channels_, in_plane = in_height_ * in_width_, out_plane = out_height_ * out_width_;
  const float* dys = dy.data();         // (N, C, Ho, Wo)
  const float* ys = y.data();           // (N, C, Ho, Wo)
  float* dxs = dx->data();              // (N, C, H, W)
  const int32_t* arg = argmax_.data();  // (N, C, Ho, Wo)
  // With an absorbed relu the gradient passes where relu's input was positive: at a window's argmax
  // that is where the window's output is (forward wrote relu of that element), so every window whose
  // output is 0 passes none. Sums to an element are then those of the relu's backward, bit for bit.
  const bool relu = input_relu_;

#pragma omp parallel for schedule(static)
  for (size_t p = 0; p < planes; ++p) {
    float* din = dxs + p * in_plane;
    const float* dout = dys + p * out_plane;
    const float* out = ys + p * out_plane;
    const int32_t* idx = arg + p * out_plane;
    for (size_t i = 0; i < in_plane; ++i) din[i] = 0.0f;
    if (relu) {
      for (size_t o = 0; o < out_plane; ++o) din[idx[o]] += out[o] > 0.0f ? dout[o] : 0.0f;
    } else {
      for (size_t o = 0; o < out_plane; ++o) din[idx[o]] += dout[o];
    }
  }
}

std::unique_ptr<Layer> make_cpu_max_pool2d(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuMaxPool2d>(Pool2dOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(max_pool2d, cpu, make_cpu_max_pool2d);

}  // namespace dptrain
