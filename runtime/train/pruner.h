// Magnitude pruning during training (the `prune:` section): which convolution and dense weights are
// held at zero, on a gradual schedule, the same on every worker.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/run_config.h"
#include "runtime/core/tensor.h"
#include "runtime/train/model.h"

namespace dptrain {

// Keeps one mask per pruned weight tensor. At each schedule point it zeroes the tensor's smallest
// weights by magnitude (ties broken by position) until the tensor reaches the schedule's sparsity;
// between points, pruned weights get no gradient and stay zero whatever the optimizer does. The
// masks follow from the parameters alone, which every worker holds identically, so every worker
// prunes the same weights. Host memory: the CPU backend.
class Pruner {
 public:
  // The tensors `settings.layers` names (every conv2d and dense weight when empty); ConfigError
  // naming prune.layers for an entry that matches no such weight.
  Pruner(const PruneSettings& settings, const Model& model, size_t steps_per_epoch);

  // The sparsity the schedule asks for after `step` global steps: 0 before start_epoch, the final
  // sparsity from end_epoch on, and in between s * (1 - (1 - p)^3), p the share of the way
  // (Zhu and Gupta's gradual schedule: fast at first, slow near the end).
  double target(uint64_t step) const;
  // Whether the masks are recomputed after `step` global steps: every every_steps steps from
  // start_epoch, and at end_epoch.
  bool updates_at(uint64_t step) const;
  // Recomputes every mask from `params` (the model's flat host buffer) for target(step), and zeroes
  // the weights it prunes.
  void update(Tensor& params, uint64_t step);
  // Zeroes the gradients of pruned weights (before the optimizer step).
  void mask_gradients(Tensor& grads) const;
  // Zeroes pruned weights again (after the optimizer step: momentum and weight decay cannot revive them).
  void apply(Tensor& params) const;

  // Each pruned tensor's parameter name and share of zeros held by its mask.
  std::vector<std::pair<std::string, double>> sparsity() const;
  // The share over all pruned tensors together.
  double total_sparsity() const;
  // The start-up line: what is pruned, how far, and when.
  std::string describe() const;

  // The masks as checkpoint tensors (1 kept, 0 pruned), named like their parameters.
  std::vector<CheckpointTensor> masks() const;
  // Restores masks saved by masks(); CheckpointError naming `source` when one does not fit. With no
  // masks (a checkpoint from before pruning started), every weight is kept.
  void load(const std::vector<CheckpointTensor>& masks, const std::string& source);
  // Every worker takes rank 0's masks (after a resume or a hand-over to joiners). Collective.
  void share(Communicator& comm, Deadline deadline);

 private:
  // PruneScope::Global: one magnitude threshold over every pruned tensor, `share` of all weights zero.
  void update_global(Tensor& params, double share);

  struct Pruned {
    const ParamEntry* entry;
    std::vector<uint8_t> keep;  // 1: kept, 0: pruned; (num_elements(entry->shape))
    size_t zeros = 0;
  };
  PruneSettings settings_;
  uint64_t start_step_ = 0, end_step_ = 0;
  std::vector<Pruned> pruned_;
};

}  // namespace dptrain
