// BatchNorm2dLayer: batch normalisation over (N, H, W) per channel of NCHW batches, with statistics
// of the whole global batch however many workers share it (synchronised batch norm).
#pragma once

#include <vector>

#include "layers/layer.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// Whether batch statistics span every worker's share of the global batch (the default, which keeps
// a run independent of the number of workers) or only this worker's samples (as PyTorch's plain
// BatchNorm2d under DDP: no communication, but the result depends on the number of workers).
enum class BatchStats { Global, PerWorker };

// YAML options of `batchnorm2d`, as torch.nn.BatchNorm2d.
struct BatchNorm2dOptions {
  double momentum = 0.1;            // `momentum`, in [0, 1]: running = (1 - m) * running + m * batch
  double eps = 1e-5;                // `eps`, > 0, added to the variance
  bool affine = true;               // `affine`: learned per-channel scale (weight) and shift (bias)
  BatchStats stats = BatchStats::Global;  // `stats`: global (default) or per_worker

  static BatchNorm2dOptions read(ConfigMap& options);
};

// Backend-independent part of batchnorm2d: input and output (C, H, W) (or (C) for a dense
// activation). Training normalises with the batch mean and biased variance and updates the running
// mean and the running unbiased variance; evaluation normalises with the running ones.
// Parameters, with affine: "weight" (C), initialised to 1, and "bias" (C), initialised to 0.
// Buffers: "running_mean" (C), initialised to 0, and "running_var" (C), initialised to 1.
//
// Statistics across workers: the forward pass sums per-channel (sum, sum of squares, count) over
// every worker (one CrossWorkerSum of 2C + 1 values), and the backward pass per-channel (sum of dy,
// sum of dy * x_hat) (2C values), so every worker normalises with the global batch's statistics and
// the gradients equal those of one worker holding the whole batch.
class BatchNorm2dLayer : public Layer {
 public:
  BatchNorm2dLayer(const BatchNorm2dOptions& options, const Shape& input_shape);

  const char* type() const override { return "batchnorm2d"; }
  std::vector<ParamSpec> parameters() const override;
  std::vector<ParamSpec> buffers() const override;
  void init_parameters(Rng& rng) override;
  void init_buffers() override;
  void join_cross_worker_sums(Pass pass, const StepInfo& step) override;

  const BatchNorm2dOptions& options() const { return options_; }

 protected:
  // Sums `values` over workers when the step has a CrossWorkerSum and stats are global.
  void sum_over_workers(const StepInfo& step, std::vector<double>& values) const;
  // From per-channel sums [sum (C), sum of squares (C), count] over the global batch: the mean and
  // 1 / sqrt(biased var + eps) to normalise with, and the unbiased variance for the running one.
  struct BatchMoments {
    std::vector<float> mean, inv_std, unbiased_var;
    double count = 0;
  };
  BatchMoments moments_from_sums(const std::vector<double>& sums) const;
  // running = (1 - momentum) * running + momentum * batch, for the mean and the unbiased variance
  // (through a host copy when the buffers are device memory).
  void update_running_statistics(const BatchMoments& moments);

  BatchNorm2dOptions options_;
  size_t channels_ = 0, spatial_ = 0;  // C, and H * W per channel
};

}  // namespace dptrain
