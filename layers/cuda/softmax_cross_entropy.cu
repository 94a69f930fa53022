// CUDA softmax_cross_entropy: one thread per sample computes a stable log-softmax, the loss, the
// arg-max hit and the gradient; the per-sample results come back to the host to be summed.
#include "layers/softmax_cross_entropy.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/cuda/kernels.h"

namespace dptrain {

namespace {

// What one sample's thread reports: its loss, and 1/0 for a correct arg-max, -1 for a bad label.
struct SampleResult {
  float loss;
  int correct;
};

__global__ void softmax_xent(const float* logits, const int32_t* labels, float* dlogits, SampleResult* results,
                             size_t n, int k, float grad_scale) {
  for (size_t s = blockIdx.x * blockDim.x + threadIdx.x; s < n; s += size_t{gridDim.x} * blockDim.x) {
    const float* z = logits + s * k;
    const int label = labels[s];
    if (label < 0 || label >= k) {
      results[s] = {0.0f, -1};
      continue;
    }
    int best = 0;
    for (int j = 1; j < k; ++j) {
      if (z[j] > z[best]) best = j;
    }
    const float top = z[best];
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) sum += expf(z[j] - top);
    const float log_sum = logf(sum);
    results[s] = {log_sum - (z[label] - top), best == label ? 1 : 0};
    if (!dlogits) continue;
    float* g = dlogits + s * k;
    for (int j = 0; j < k; ++j) g[j] = grad_scale * (expf(z[j] - top - log_sum) - (j == label ? 1.0f : 0.0f));
  }
}

// softmax_cross_entropy on the GPU. `labels` passed to loss() are device memory (N int32).
class CudaSoftmaxCrossEntropy final : public SoftmaxCrossEntropyLayer {
 public:
  CudaSoftmaxCrossEntropy(const Shape& input_shape, Backend& backend, CudaContext& cuda)
      : SoftmaxCrossEntropyLayer(input_shape, backend), cuda_(cuda) {}

  LossStats loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) override;

 private:
  CudaContext& cuda_;
  DeviceBuffer results_;                  // (N) SampleResult
  std::vector<SampleResult> host_results_;  // (N)
};

LossStats CudaSoftmaxCrossEntropy::loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                                        float grad_scale) {
  const size_t n = check_loss_shapes(logits, dlogits);
  LossStats stats;
  stats.count = n;
  if (n == 0) return stats;
  cudaStream_t stream = cuda_.stream();
  auto* results = static_cast<SampleResult*>(results_.reserve(n * sizeof(SampleResult)));
  softmax_xent<<<grid_for(n), kBlockThreads, 0, stream>>>(logits.data(), labels, dlogits ? dlogits->data() : nullptr,
                                                          results, n, static_cast<int>(classes()), grad_scale);
  DPTRAIN_CUDA_CHECK_LAUNCH();
  host_results_.resize(n);
  DPTRAIN_CUDA_CHECK(
      cudaMemcpyAsync(host_results_.data(), results, n * sizeof(SampleResult), cudaMemcpyDeviceToHost, stream));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (size_t s = 0; s < n; ++s) {
    if (host_results_[s].correct < 0) {
      throw Error("softmax_cross_entropy: the label of batch entry " + std::to_string(s) + " is outside [0, " +
                  std::to_string(classes()) + ") (check the data set's labels against the model's outputs)");
    }
    stats.loss_sum += host_results_[s].loss;
    stats.correct += static_cast<size_t>(host_results_[s].correct);
  }
  return stats;
}

std::unique_ptr<Layer> make_cuda_softmax_cross_entropy(ConfigMap&, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaSoftmaxCrossEntropy>(input_shape, backend, cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(softmax_cross_entropy, cuda, make_cuda_softmax_cross_entropy);

}  // namespace dptrain
