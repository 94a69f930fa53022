// CPU relu: a flat, vectorisable loop split over OpenMP threads.
#include "layers/relu.h"

#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"

namespace dptrain {

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr size_t kParallelElements = 1 << 14;

// relu on the CPU.
class CpuRelu final : public ReluLayer {
 public:
  using ReluLayer::ReluLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    const float* in = x.data();
    float* out = y.data();
    const size_t count = x.num_elements();
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
    for (size_t i = 0; i < count; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    if (!dx) return;
    const float* in = x.data();
    const float* g = dy.data();
    float* out = dx->data();
    const size_t count = x.num_elements();
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
    for (size_t i = 0; i < count; ++i) out[i] = in[i] > 0.0f ? g[i] : 0.0f;
  }
};

std::unique_ptr<Layer> make_cpu_relu(ConfigMap&, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuRelu>(input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(relu, cpu, make_cpu_relu);

}  // namespace dptrain
