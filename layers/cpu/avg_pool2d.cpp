// CPU avg_pool2d: one OpenMP task per (sample, channel) plane.
#include "layers/avg_pool2d.h"

#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"

namespace dptrain {

namespace {

// avg_pool2d on the CPU.
class CpuAvgPool2d final : public AvgPool2dLayer {
 public:
  using AvgPool2dLayer::AvgPool2dLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;
};

void CpuAvgPool2d::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t planes = check_forward_shapes(*this, x, y) * channels_;
  const size_t in_plane = in_height_ * in_width_, out_plane = out_height_ * out_width_;
  const float* xs = x.data();  // (N, C, H, W)
  float* ys = y.data();        // (N, C, Ho, Wo)

#pragma omp parallel for schedule(static)
  for (size_t p = 0; p < planes; ++p) {
    const float* in = xs + p * in_plane;
    float* out = ys + p * out_plane;
    for (size_t oy = 0; oy < out_height_; ++oy) {
      const Span rows = window(oy, in_height_);
      for (size_t ox = 0; ox < out_width_; ++ox) {
        const Span cols = window(ox, in_width_);
        float sum = 0.0f;
        for (size_t iy = rows.begin; iy < rows.end; ++iy) {
          for (size_t ix = cols.begin; ix < cols.end; ++ix) sum += in[iy * in_width_ + ix];
        }
        out[oy * out_width_ + ox] = sum / static_cast<float>((rows.end - rows.begin) * (cols.end - cols.begin));
      }
    }
  }
}

void CpuAvgPool2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t planes = check_backward_shapes(*this, x, y, dy, dx) * channels_;
  if (!dx) return;
  const size_t in_plane = in_height_ * in_width_, out_plane = out_height_ * out_width_;
  const float* dys = dy.data();  // (N, C, Ho, Wo)
  float* dxs = dx->data();       // (N, C, H, W)

#pragma omp parallel for schedule(static)
  for (size_t p = 0; p < planes; ++p) {
    float* din = dxs + p * in_plane;
    const float* dout = dys + p * out_plane;
    for (size_t i = 0; i < in_plane; ++i) din[i] = 0.0f;
    for (size_t oy = 0; oy < out_height_; ++oy) {
      const Span rows = window(oy, in_height_);
      for (size_t ox = 0; ox < out_width_; ++ox) {
        const Span cols = window(ox, in_width_);
        const float g =
            dout[oy * out_width_ + ox] / static_cast<float>((rows.end - rows.begin) * (cols.end - cols.begin));
        for (size_t iy = rows.begin; iy < rows.end; ++iy) {
          for (size_t ix = cols.begin; ix < cols.end; ++ix) din[iy * in_width_ + ix] += g;
        }
      }
    }
  }
}

std::unique_ptr<Layer> make_cpu_avg_pool2d(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuAvgPool2d>(Pool2dOptions::read(options), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(avg_pool2d, cpu, make_cpu_avg_pool2d);

}  // namespace dptrain
