// CUDA dropout: the same counter-based mask as the CPU layer (DropoutLayer::draw of the same
// per-sample keys), recomputed in backward from the keys instead of being stored.
#include "layers/dropout.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/cuda/cuda_layers.h"
#include "layers/layer_util.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// out = in * mask, where mask is 0 or `scale` for element e of sample s by draw(keys[s], e).
__global__ void dropout_apply(const float* in, float* out, const uint64_t* keys, size_t count, size_t per_sample,
                              uint32_t threshold, float scale) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    const size_t s = i / per_sample, e = i % per_sample;
    out[i] = DropoutLayer::draw(keys[s], e) < threshold ? 0.0f : in[i] * scale;
  }
}

// dropout on the GPU.
class CudaDropout final : public DropoutLayer {
 public:
  CudaDropout(const DropoutOptions& options, uint64_t salt, const Shape& input_shape, CudaContext& cuda)
      : DropoutLayer(options, salt, input_shape), cuda_(cuda) {}

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  void apply(const float* in, float* out, size_t count);
  // out = in, unless they are the same memory.
  void copy(const Tensor& in, Tensor& out);

  CudaContext& cuda_;

  DeviceBuffer keys_;      // (N) uint64: the mask key of each sample of the last training forward
  size_t keys_batch_ = 0;  // N of that forward
};

void CudaDropout::apply(const float* in, float* out, size_t count) {
  if (count == 0) return;
  dropout_apply<<<grid_for(count), kBlockThreads, 0, cuda_.stream()>>>(
      in, out, static_cast<const uint64_t*>(keys_.get()), count, num_elements(input_shape_), drop_threshold(),
      keep_scale());
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaDropout::copy(const Tensor& in, Tensor& out) {
  if (in.data() == out.data() || in.num_elements() == 0) return;
  DPTRAIN_CUDA_CHECK(
      cudaMemcpyAsync(out.data(), in.data(), in.size_bytes(), cudaMemcpyDeviceToDevice, cuda_.stream()));
}

void CudaDropout::forward(const Tensor& x, Tensor& y, const StepInfo& step) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (step.mode == Mode::Eval) {
    copy(x, y);
    return;
  }
  std::vector<uint64_t> keys(n);
  for (size_t s = 0; s < n; ++s) keys[s] = sample_key(step, s);
  cudaStream_t stream = cuda_.stream();
  void* device_keys = keys_.reserve(std::max<size_t>(n, 1) * sizeof(uint64_t));
  // From pageable memory: returns once `keys` has been staged, so it may go out of scope.
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device_keys, keys.data(), n * sizeof(uint64_t), cudaMemcpyHostToDevice, stream));
  keys_batch_ = n;
  apply(x.data(), y.data(), x.num_elements());
}

void CudaDropout::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (!dx) return;
  if (step.mode == Mode::Eval) {
    copy(dy, *dx);
    return;
  }
  if (n != keys_batch_) {
    throw ShapeError("dropout: backward for a batch of " + std::to_string(n) + " after a training forward of " +
                     std::to_string(keys_batch_));
  }
  apply(dy.data(), dx->data(), dy.num_elements());
}

}  // namespace

std::unique_ptr<Layer> make_cuda_dropout(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  const DropoutOptions parsed = DropoutOptions::read(options);
  return std::make_unique<CudaDropout>(parsed, dropout_salt(options.path()), input_shape, cuda_context(backend));
}

}  // namespace dptrain
