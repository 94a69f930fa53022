// CUDA softmax_cross_entropy: one thread per sample computes a stable log-softmax, the (label-smoothed)
// loss, the arg-max hit and the gradient; the per-sample results come back to the host to be summed.
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

// The target distribution of label smoothing: the label gets on_label + per_class, every other
// class per_class (on_label = 1 - eps, per_class = eps / K).
struct SmoothedTarget {
  float smoothing;  // eps
  float on_label;   // 1 - eps
  float per_class;  // eps / K
};

__global__ void softmax_xent(const float* logits, const int32_t* labels, float* dlogits, SampleResult* results,
                             size_t n, int k, SmoothedTarget target, float grad_scale) {
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
    float shifted_sum = 0.0f;  // sum of (z - top)
    for (int j = 0; j < k; ++j) {
      sum += expf(z[j] - top);
      shifted_sum += z[j] - top;
    }
    const float log_sum = logf(sum);
    const float nll = log_sum - (z[label] - top);                          // -log p_label
    const float mean_nll = log_sum - shifted_sum / static_cast<float>(k);  // mean_k -log p_k
    const float loss = target.smoothing > 0.0f ? target.on_label * nll + target.smoothing * mean_nll : nll;
    results[s] = {loss, best == label ? 1 : 0};
    if (!dlogits) continue;
    float* g = dlogits + s * k;
    for (int j = 0; j < k; ++j) {
      const float wanted = (j == label ? target.on_label : 0.0f) + target.per_class;
      g[j] = grad_scale * (expf(z[j] - top - log_sum) - wanted);
    }
  }
}

// softmax_cross_entropy on the GPU. `labels` passed to loss() are device memory (N int32).
class CudaSoftmaxCrossEntropy final : public SoftmaxCrossEntropyLayer {
 public:
  CudaSoftmaxCrossEntropy(const SoftmaxCrossEntropyOptions& options, const Shape& input_shape, Backend& backend,
                          CudaContext& cuda)
      : SoftmaxCrossEntropyLayer(options, input_shape, backend), cuda_(cuda) {}

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
  const SmoothedTarget target{static_cast<float>(label_smoothing()), static_cast<float>(1.0 - label_smoothing()),
                              static_cast<float>(label_smoothing() / static_cast<double>(classes()))};
  softmax_xent<<<grid_for(n), kBlockThreads, 0, stream>>>(logits.data(), labels, dlogits ? dlogits->data() : nullptr,
                                                          results, n, static_cast<int>(classes()), target, grad_scale);
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

std::unique_ptr<Layer> make_cuda_softmax_cross_entropy(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaSoftmaxCrossEntropy>(SoftmaxCrossEntropyOptions::read(options), input_shape, backend,
                                                   cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(softmax_cross_entropy, cuda, make_cuda_softmax_cross_entropy);

}  // namespace dptrain
