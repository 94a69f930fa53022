// CPU leaky_relu, sigmoid, tanh and silu: one flat loop per function, split over OpenMP threads.
#include "layers/activation.h"

#include <cmath>
#include <memory>

#include "layers/layer_util.h"
#include "layers/registry.h"

namespace dptrain {

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr size_t kParallelElements = 1 << 14;

// Each function as value(x) and gradient(x, y, dy) = dy * f'(x), written as PyTorch writes them.
struct LeakyRelu {
  float slope;
  float value(float x) const { return x > 0.0f ? x : x * slope; }
  float gradient(float x, float, float dy) const { return x > 0.0f ? dy : dy * slope; }
};
struct Sigmoid {
  float value(float x) const { return 1.0f / (1.0f + std::exp(-x)); }
  float gradient(float, float y, float dy) const { return dy * (1.0f - y) * y; }
};
struct Tanh {
  float value(float x) const { return std::tanh(x); }
  float gradient(float, float y, float dy) const { return dy * (1.0f - y * y); }
};
struct Silu {
  float value(float x) const { return x / (1.0f + std::exp(-x)); }
  float gradient(float x, float, float dy) const {
    const float s = 1.0f / (1.0f + std::exp(-x));
    return dy * s * (1.0f + x * (1.0f - s));
  }
};

template <typename F>
void apply_forward(const F& f, const float* x, float* y, size_t count) {
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
  for (size_t i = 0; i < count; ++i) y[i] = f.value(x[i]);
}

template <typename F>
void apply_backward(const F& f, const float* x, const float* y, const float* dy, float* dx, size_t count) {
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
  for (size_t i = 0; i < count; ++i) dx[i] = f.gradient(x[i], y[i], dy[i]);
}

// Calls run(functor) with the functor of `options.function`.
template <typename Run>
void dispatch(const ActivationOptions& options, Run run) {
  switch (options.function) {
    case ActivationFunction::LeakyRelu:
      run(LeakyRelu{options.negative_slope});
      return;
    case ActivationFunction::Sigmoid:
      run(Sigmoid{});
      return;
    case ActivationFunction::Tanh:
      run(Tanh{});
      return;
    case ActivationFunction::Silu:
      run(Silu{});
      return;
  }
}

// An element-wise activation on the CPU.
class CpuActivation final : public ActivationLayer {
 public:
  using ActivationLayer::ActivationLayer;

  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    check_forward_shapes(*this, x, y);
    dispatch(options_, [&](const auto& f) { apply_forward(f, x.data(), y.data(), x.num_elements()); });
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    check_backward_shapes(*this, x, y, dy, dx);
    if (!dx) return;
    dispatch(options_,
             [&](const auto& f) { apply_backward(f, x.data(), y.data(), dy.data(), dx->data(), x.num_elements()); });
  }
};

template <ActivationFunction F>
std::unique_ptr<Layer> make_cpu_activation(ConfigMap& options, const Shape& input_shape, Backend&) {
  return std::make_unique<CpuActivation>(ActivationOptions::read(options, F), input_shape);
}

}  // namespace

DPTRAIN_REGISTER_LAYER(leaky_relu, cpu, make_cpu_activation<ActivationFunction::LeakyRelu>);
DPTRAIN_REGISTER_LAYER(sigmoid, cpu, make_cpu_activation<ActivationFunction::Sigmoid>);
DPTRAIN_REGISTER_LAYER(tanh, cpu, make_cpu_activation<ActivationFunction::Tanh>);
DPTRAIN_REGISTER_LAYER(silu, cpu, make_cpu_activation<ActivationFunction::Silu>);

}  // namespace dptrain
