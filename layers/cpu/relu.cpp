// CPU relu: a flat, vectorisable loop split over OpenMP threads, compiled for the CPU's vector width.
#include "layers/relu.h"

#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/kernel_dispatch.h"

namespace dptrain {

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr size_t kParallelElements = 1 << 14;

// y = max(x, 0) over [0, count).
DPTRAIN_CPU_KERNEL void relu_forward_span(const float* x, float* y, size_t count) {
#pragma omp simd
  for (size_t i = 0; i < count; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = dy where x > 0, else 0, over [0, count). Baseline x86-64 (SSE2) has no blend instruction: without
// the AVX2 and AVX-512 clones this loop is scalar with a branch per element (about 50 times slower on
// a batch of random signs).
DPTRAIN_CPU_KERNEL void relu_backward_span(const float* x, const float* dy, float* dx, size_t count) {
#pragma omp simd
  for (size_t i = 0; i < count; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

// relu on the CPU.
class CpuRelu final : public ReluLayer {
 public:
  using ReluLayer::ReluLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    const float* in = x.data();
    float* out = y.data();
    for_each_thread_share(x.num_elements(), kParallelElements,
                          [&](size_t begin, size_t end) { relu_forward_span(in + begin, out + begin, end - begin); });
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    if (!dx) return;
    const float* in = x.data();
    const float* g = dy.data();
    float* out = dx->data();
    for_each_thread_share(x.num_elements(), kParallelElements, [&](size_t begin, size_t end) {
      relu_backward_span(in + begin, g + begin, out + begin, end - begin);
    });
  }
};

std::unique_ptr<Layer> make_cpu_relu(ConfigMap&, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuRelu>(input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(relu, cpu, make_cpu_relu);

}  // namespace dptrain
