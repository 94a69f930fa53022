// CUDA dropout: the same counter-based mask as the CPU layer (DropoutLayer::draw of the same
// per-sample keys), recomputed in backward from the keys instead of being stored.
#include "layers/dropout.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
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
  CudaDropout(const DropoutOptions& options, uint64_t salt, const Shape& input_shape, Backend& backend,
              CudaContext& cuda)
      : DropoutLayer(options, salt, input_shape, backend), cuda_(cuda) {}

 private:
  void forward_train(const Tensor& x, Tensor& y, const std::vector<uint64_t>& keys) override;
  void backward_train(const Tensor& dy, Tensor& dx) override;
  // out = in * mask, for `count` elements, with the keys of the last training forward.
  void apply(const float* in, float* out, size_t count);

  CudaContext& cuda_;
  DeviceBuffer keys_;  // (N) uint64: the mask key of each sample of the last training forward
};

void CudaDropout::apply(const float* in, float* out, size_t count) {
  if (count == 0) return;
  dropout_apply<<<grid_for(count), kBlockThreads, 0, cuda_.stream()>>>(
      in, out, static_cast<const uint64_t*>(keys_.get()), count, num_elements(input_shape_), drop_threshold(),
      keep_scale());
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

void CudaDropout::forward_train(const Tensor& x, Tensor& y, const std::vector<uint64_t>& keys) {
  const size_t n = keys.size();
  void* device_keys = keys_.reserve(std::max<size_t>(n, 1) * sizeof(uint64_t));
  // From pageable memory: returns once `keys` has been staged, so the caller may free it.
  DPTRAIN_CUDA_CHECK(
      cudaMemcpyAsync(device_keys, keys.data(), n * sizeof(uint64_t), cudaMemcpyHostToDevice, cuda_.stream()));
  apply(x.data(), y.data(), x.num_elements());
}

void CudaDropout::backward_train(const Tensor& dy, Tensor& dx) { apply(dy.data(), dx.data(), dy.num_elements()); }

std::unique_ptr<Layer> make_cuda_dropout(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  const DropoutOptions parsed = DropoutOptions::read(options);
  return std::make_unique<CudaDropout>(parsed, dropout_salt(options.path()), input_shape, backend,
                                       cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(dropout, cuda, make_cuda_dropout);

}  // namespace dptrain
