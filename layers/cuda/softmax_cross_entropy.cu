// CUDA softmax_cross_entropy: one thread per sample computes a stable log-softmax, the (label-smoothed)
// loss, the arg-max hit and the gradient; one block adds the per-sample results up on the device, into
// the batch's sums (loss()) or the running sums (accumulate(), read by take_sums()).
#include "layers/softmax_cross_entropy.h"

#include <climits>
#include <cstdint>
#include <memory>
#include <string>

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
      for (int j = 0; dlogits && j < k; ++j) dlogits[s * k + j] = 0.0f;
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

// The sums one batch adds to: loss sum, correct, samples, bad labels, the first bad batch entry (of
// the first batch that had one).
enum SumSlot { kLossSum, kCorrect, kSamples, kBadLabels, kFirstBad, kSumSlots };

// Adds the per-sample results of a batch to `sums` (kSumSlots doubles) in a fixed order: one block of
// kBlockThreads threads, so the same bits every time.
__global__ void add_results(const SampleResult* results, size_t n, double* sums) {
  __shared__ double loss[kBlockThreads];
  __shared__ double correct[kBlockThreads];
  __shared__ unsigned long long bad[kBlockThreads];
  __shared__ unsigned long long first_bad[kBlockThreads];
  double l = 0, c = 0;
  unsigned long long b = 0, first = ULLONG_MAX;
  for (size_t s = threadIdx.x; s < n; s += blockDim.x) {
    const SampleResult r = results[s];
    if (r.correct < 0) {
      ++b;
      first = s < first ? s : first;
      continue;
    }
    l += r.loss;
    c += r.correct;
  }
  loss[threadIdx.x] = l;
  correct[threadIdx.x] = c;
  bad[threadIdx.x] = b;
  first_bad[threadIdx.x] = first;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      loss[threadIdx.x] += loss[threadIdx.x + half];
      correct[threadIdx.x] += correct[threadIdx.x + half];
      bad[threadIdx.x] += bad[threadIdx.x + half];
      const unsigned long long other = first_bad[threadIdx.x + half];
      if (other < first_bad[threadIdx.x]) first_bad[threadIdx.x] = other;
    }
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  if (bad[0] > 0 && sums[kBadLabels] == 0) sums[kFirstBad] = static_cast<double>(first_bad[0]);
  sums[kLossSum] += loss[0];
  sums[kCorrect] += correct[0];
  sums[kSamples] += static_cast<double>(n);
  sums[kBadLabels] += static_cast<double>(bad[0]);
}

// softmax_cross_entropy on the GPU. `labels` passed to loss() are device memory (N int32).
class CudaSoftmaxCrossEntropy final : public SoftmaxCrossEntropyLayer {
 public:
  CudaSoftmaxCrossEntropy(const SoftmaxCrossEntropyOptions& options, const Shape& input_shape, Backend& backend,
                          CudaContext& cuda)
      : SoftmaxCrossEntropyLayer(options, input_shape, backend), cuda_(cuda) {}

  LossStats loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) override;
  void accumulate(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) override;
  LossStats take_sums() override;

 private:
  // Queues the per-sample kernel and adds its results to `sums` (device, kSumSlots doubles).
  void add_batch(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale, double* sums);
  // Copies `sums` (device) to the host, waiting for the stream, and zeroes them; Error on a bad label.
  LossStats read_and_zero(double* sums);
  // The running sums at [0, kSumSlots), one batch's at [kSumSlots, 2 * kSumSlots); zeroed when made.
  double* sums();

  CudaContext& cuda_;
  DeviceBuffer results_;  // (N) SampleResult
  DeviceBuffer sums_;     // (2 * kSumSlots) double
};

double* CudaSoftmaxCrossEntropy::sums() {
  if (!sums_.get()) {
    sums_.reserve(2 * kSumSlots * sizeof(double));
    DPTRAIN_CUDA_CHECK(cudaMemsetAsync(sums_.get(), 0, 2 * kSumSlots * sizeof(double), cuda_.stream()));
  }
  return static_cast<double*>(sums_.get());
}

void CudaSoftmaxCrossEntropy::add_batch(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                                        float grad_scale, double* sums) {
  const size_t n = check_loss_shapes(logits, dlogits);
  if (n == 0) return;
  cudaStream_t stream = cuda_.stream();
  auto* results = static_cast<SampleResult*>(results_.reserve(n * sizeof(SampleResult)));
  const SmoothedTarget target{static_cast<float>(label_smoothing()), static_cast<float>(1.0 - label_smoothing()),
                              static_cast<float>(label_smoothing() / static_cast<double>(classes()))};
  softmax_xent<<<grid_for(n), kBlockThreads, 0, stream>>>(logits.data(), labels, dlogits ? dlogits->data() : nullptr,
                                                          results, n, static_cast<int>(classes()), target, grad_scale);
  DPTRAIN_CUDA_CHECK_LAUNCH();
  add_results<<<1, kBlockThreads, 0, stream>>>(results, n, sums);
  DPTRAIN_CUDA_CHECK_LAUNCH();
}

LossStats CudaSoftmaxCrossEntropy::read_and_zero(double* sums) {
  double host[kSumSlots];
  cudaStream_t stream = cuda_.stream();
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(host, sums, sizeof(host), cudaMemcpyDeviceToHost, stream));
  DPTRAIN_CUDA_CHECK(cudaMemsetAsync(sums, 0, sizeof(host), stream));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (host[kBadLabels] > 0) {
    throw Error("softmax_cross_entropy: the label of batch entry " +
                std::to_string(static_cast<size_t>(host[kFirstBad])) + " is outside [0, " +
                std::to_string(classes()) + ") (check the data set's labels against the model's outputs)");
  }
  LossStats stats;
  stats.loss_sum = host[kLossSum];
  stats.correct = static_cast<size_t>(host[kCorrect]);
  stats.count = static_cast<size_t>(host[kSamples]);
  return stats;
}

LossStats CudaSoftmaxCrossEntropy::loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                                        float grad_scale) {
  double* batch = sums() + kSumSlots;
  add_batch(logits, labels, dlogits, grad_scale, batch);
  return read_and_zero(batch);
}

void CudaSoftmaxCrossEntropy::accumulate(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                                         float grad_scale) {
  add_batch(logits, labels, dlogits, grad_scale, sums());
}

LossStats CudaSoftmaxCrossEntropy::take_sums() { return read_and_zero(sums()); }

std::unique_ptr<Layer> make_cuda_softmax_cross_entropy(ConfigMap& options, const Shape& input_shape, Backend& backend) {
  return std::make_unique<CudaSoftmaxCrossEntropy>(SoftmaxCrossEntropyOptions::read(options), input_shape, backend,
                                                   cuda_context(backend));
}

}  // namespace

DPTRAIN_REGISTER_LAYER(softmax_cross_entropy, cuda, make_cuda_softmax_cross_entropy);

}  // namespace dptrain
