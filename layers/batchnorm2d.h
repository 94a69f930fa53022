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

// Where each value lies in the vectors of batch statistics that workers sum, for C channels. Forward:
// [sum of x (C), sum of x^2 (C), count] (2C + 1 doubles; count: values per channel); backward:
// [sum of dy (C), sum of dy * x_hat (C)] (2C doubles). The same on the host and on a device.
struct BatchStatsLayout {
  size_t channels;  // C
  // Index of channel c's first sum (x, or dy) and second sum (x^2, or dy * x_hat).
  constexpr size_t first(size_t c) const { return c; }
  constexpr size_t second(size_t c) const { return channels + c; }
  // Index of the count of values per channel (forward only).
  constexpr size_t count() const { return 2 * channels; }
  // How many values one pass sums.
  constexpr size_t values(Pass pass) const { return pass == Pass::Forward ? 2 * channels + 1 : 2 * channels; }
};

// How a training step's batch statistics are summed: over this worker's samples alone (one worker,
// or stats: per_worker), over workers in host memory (a host all-reduce: a GPU waits for its sums to
// reach the host), or over workers in device memory (queued on the compute stream: nothing waits).
enum class StatsPath { Local, HostSum, DeviceSum };

// Backend-independent part of batchnorm2d: input and output (C, H, W) (or (C) for a dense
// activation). Training normalises with the batch mean and biased variance and updates the running
// mean and the running unbiased variance; evaluation normalises with the running ones.
// Parameters, with affine: "weight" (C), initialised to 1, and "bias" (C), initialised to 0.
// Buffers: "running_mean" (C), initialised to 0, and "running_var" (C), initialised to 1.
//
// Statistics across workers: the forward pass sums per-channel (sum, sum of squares, count) over
// every worker (one CrossWorkerSum of 2C + 1 values), and the backward pass per-channel (sum of dy,
// sum of dy * x_hat) (2C values) (BatchStatsLayout), so every worker normalises with the global batch's statistics and
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
  // Exact sums keep a run independent of the worker count only with global statistics.
  bool exact_gradients() const override { return options_.stats == BatchStats::Global; }
  // Memory-bound. Per element: forward (training) sums x and x^2 (3 FLOPs) and normalises
  // (x * scale + shift, 2), reading x twice and writing y; backward sums dy and dy * x_hat
  // (5 FLOPs, reading x and dy) and, when dx is Computed, writes dx from them (6 FLOPs, reading x
  // and dy again).
  LayerWork work(InputGradient dx) const override;

  const BatchNorm2dOptions& options() const { return options_; }
  const BatchStatsLayout& stats_layout() const { return layout_; }
  // How `step`'s statistics are summed: Local without a CrossWorkerSum or with stats: per_worker,
  // else as the step's CrossWorkerSum takes its values.
  StatsPath stats_path(const StepInfo& step) const;

 protected:
  // Sums host `values` over workers when the step's path is HostSum (UsageError for DeviceSum: the
  // caller sums device memory itself).
  void sum_over_workers(const StepInfo& step, std::vector<double>& values) const;
  // Summation::Exact: this worker's 2C exact sums of `pass`, and for Forward the count,
  // summed over workers as doubles, each sum as its two 32-bit halves; returns the totals in BatchStatsLayout
  // order.
  std::vector<double> exact_over_workers(const StepInfo& step, ExactSums& local, Pass pass, double count) const;
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
  BatchStatsLayout layout_{0};
};

}  // namespace dptrain
