// CPU global_avg_pool2d: one sum per (sample, channel) plane, planes spread over OpenMP threads.
#include "layers/global_avg_pool2d.h"

#include <algorithm>
#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"

namespace dptrain {

namespace {

// Below this many planes a parallel region costs more than it saves.
constexpr size_t kParallelPlanes = 256;

// global_avg_pool2d on the CPU.
class CpuGlobalAvgPool2d final : public GlobalAvgPool2dLayer {
 public:
  using GlobalAvgPool2dLayer::GlobalAvgPool2dLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    const size_t planes = check_forward_shapes(*this, x, y) * channels_, area = height_ * width_;
    const float* in = x.data();  // (N * C, H * W)
    float* out = y.data();       // (N * C)
    const auto divisor = static_cast<float>(area);
#pragma omp parallel for schedule(static) if (planes >= kParallelPlanes)
    for (size_t p = 0; p < planes; ++p) {
      const float* plane = in + p * area;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (size_t i = 0; i < area; ++i) sum += plane[i];
      out[p] = sum / divisor;
    }
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    const size_t planes = check_backward_shapes(*this, x, y, dy, dx) * channels_, area = height_ * width_;
    if (!dx) return;
    const float* g = dy.data();  // (N * C)
    float* out = dx->data();     // (N * C, H * W)
    const auto divisor = static_cast<float>(area);
#pragma omp parallel for schedule(static) if (planes >= kParallelPlanes)
    for (size_t p = 0; p < planes; ++p) std::fill(out + p * area, out + (p + 1) * area, g[p] / divisor);
  }
};

std::unique_ptr<Layer> make_cpu_global_avg_pool2d(ConfigMap&, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuGlobalAvgPool2d>(input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(global_avg_pool2d, cpu, make_cpu_global_avg_pool2d);

}  // namespace dptrain
