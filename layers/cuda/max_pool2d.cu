// CUDA max_pool2d: one thread per output forward (recording the argmax), one thread per input
// element backward (gathering the outputs that chose it). Written as kernels rather than cuDNN
// pooling so that ties go to the first element in row-major order, as on the CPU, and so that
// backward is deterministic. Float32 or bf16 activations (it follows the type it is offered: a
// maximum is one of its inputs, exact in either type; backward sums in float32, rounded once).
#include "layers/max_pool2d.h"

#include <memory>
#include <string>

#include "layers/layer_util.h"
#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/element_types.cuh"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// Window geometry of one layer, passed to the kernels by value.
struct PoolGeometry {
  int height, width, out_height, out_width, kernel, stride, padding;
};

template <typename T>
__global__ void max_pool_forward(const T* x, T* y, int* argmax, size_t outputs, PoolGeometry g) {
  const size_t out_plane = static_cast<size_t>(g.out_height) * g.out_width;
  for (size_t o = blockIdx.x * blockDim.x + threadIdx.x; o < outputs; o += size_t{gridDim.x} * blockDim.x) {
    const size_t plane = o / out_plane;
    const int oy = static_cast<int>((o % out_plane) / g.out_width), ox = static_cast<int>(o % g.out_width);
    const T* in = x + plane * g.height * g.width;
    const int y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernel, g.height);
    const int x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernel, g.width);
    int at = y0 * g.width + x0;
    float best = widen(in[at]);
    for (int iy = y0; iy < y1; ++iy) {
      for (int ix = x0; ix < x1; ++ix) {
        const int i = iy * g.width + ix;
        const float v = widen(in[i]);
        if (v > best) best = v, at = i;
      }
    }
    y[o] = in[at];
    argmax[o] = at;
  }
}

template <typename T>
__global__ void max_pool_backward(const T* dy, const int* argmax, T* dx, size_t inputs, PoolGeometry g) {
  const size_t in_plane = static_cast<size_t>(g.height) * g.width;
  const size_t out_plane = static_cast<size_t>(g.out_height) * g.out_width;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < inputs; i += size_t{gridDim.x} * blockDim.x) {
    const size_t plane = i / in_plane;
    const int at = static_cast<int>(i % in_plane);
    const int iy = at / g.width, ix = at % g.width;
    // Outputs whose window [o * stride - padding, + kernel) contains iy (and ix).
    const int oy0 = max(0, (iy + g.padding - g.kernel) / g.stride + ((iy + g.padding - g.kernel) >= 0 ? 1 : 0));
    const int oy1 = min(g.out_height - 1, (iy + g.padding) / g.stride);
    const int ox0 = max(0, (ix + g.padding - g.kernel) / g.stride + ((ix + g.padding - g.kernel) >= 0 ? 1 : 0));
    const int ox1 = min(g.out_width - 1, (ix + g.padding) / g.stride);
    float sum = 0.0f;
    for (int oy = oy0; oy <= oy1; ++oy) {
      for (int ox = ox0; ox <= ox1; ++ox) {
        const size_t o = plane * out_plane + static_cast<size_t>(oy) * g.out_width + ox;
        if (argmax[o] == at) sum += widen(dy[o]);
      }
    }
    dx[i] = narrow<T>(sum);
  }
}

// max_pool2d on the GPU.
class CudaMaxPool2d final : public MaxPool2dLayer {
 public:
  CudaMaxPool2d(const Pool2dOptions& options, const Shape& input_shape, CudaContext& cuda)
      : MaxPool2dLayer(options, input_shape), cuda_(cuda) {}

  // The type it is offered, float32 or bf16.
  ActivationTypes activation_types(DType offered) const override { return {offered, offered}; }
  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  PoolGeometry geometry() const {
    return {static_cast<int>(in_height_), static_cast<int>(in_width_), static_cast<int>(out_height_),
            static_cast<int>(out_width_), static_cast<int>(options_.kernel), static_cast<int>(options_.stride),
            static_cast<int>(options_.padding)};
  }

  CudaContext& cuda_;
  DeviceBuffer argmax_;     // (N, C, Ho, Wo) int32: index within the (H, W) plane of each window's maximum
  size_t argmax_batch_ = 0;  // N of the forward pass that filled argmax_
};

void CudaMaxPool2d::forward(const Tensor& x, Tensor& y, const StepInfo&) {
  const size_t n = check_forward_shapes(*this, x, y);
  const size_t outputs = y.num_elements();
  auto* argmax = static_cast<int*>(argmax_.reserve(outputs * sizeof(int)));
  argmax_batch_ = n;
  if (outputs == 0) return;
  if (x.dtype() == DType::BFloat16) {
    max_pool_forward<<<grid_for(outputs), kBlockThreads, 0, cuda_.stream()>>>(
        static_cast<const __nv_bfloat16*>(x.raw()), static_cast<__nv_bfloat16*>(y.raw()), argmax, outputs, geometry());
  } else {
    max_pool_forward<<<grid_for(outputs), kBlockThreads, 0, cuda_.stream()>>>(x.data(), y.data(), argmax, outputs,
                                                                              geometry());
  }
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaMaxPool2d::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo&) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (!dx) return;
  if (n != argmax_batch_) {
    throw ShapeError("max_pool2d: backward for a batch of " + std::to_string(n) + " after a forward of " +
                     std::to_string(argmax_batch_));
  }
  const size_t inputs = dx->num_elements();
  if (inputs == 0) return;
  const auto* argmax = static_cast<const int*>(argmax_.get());
  if (dy.dtype() == DType::BFloat16) {
    max_pool_backward<<<grid_for(inputs), kBlockThreads, 0, cuda_.stream()>>>(
        static_cast<const __nv_bfloat16*>(dy.raw()), argmax, static_cast<__nv_bfloat16*>(dx->raw()), inputs,
        geometry());
  } else {
    max_pool_backward<<<grid_for(inputs), kBlockThreads, 0, cuda_.stream()>>>(dy.data(), argmax, dx->data(), inputs,
                                                                              geometry());
  }
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

std::unique_ptr<Layer> make_cuda_max_pool2d(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaMaxPool2d>(Pool2dOptions::read(options), input_shape, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(max_pool2d, cuda, make_cuda_max_pool2d);

}  // namespace dptrain
