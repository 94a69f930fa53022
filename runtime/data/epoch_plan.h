// EpochPlan: the order in which one epoch visits the data set, and each worker's share of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/core/run_config.h"

namespace dptrain {

// Whether an epoch visits the data set in a random order (training) or in index order (evaluation).
enum class Shuffle { No, Yes };

// One epoch's order: a permutation of [0, dataset_size) drawn from (seed, epoch) alone, cut into
// global batches. It never depends on rank or world size, so any number of workers, or a resumed
// run, visits the same samples in the same global batches.
class EpochPlan {
 public:
  // Throws ConfigError when global_batch is 0.
  EpochPlan(size_t dataset_size, size_t global_batch, uint64_t seed, uint64_t epoch, DropLast drop_last,
            Shuffle shuffle);

  // Global batches in the epoch.
  size_t num_steps() const { return num_steps_; }
  // Global size of step `step`: the configured size, except that the last may be smaller unless DropLast::Yes.
  size_t batch_size(size_t step) const;
  // Global sample indices of step `step`, in order.
  std::vector<uint64_t> batch(size_t step) const;
  // Global sample indices of `rank`'s slice of step `step` when `world` workers share it: rank r gets
  // positions [floor(B*r/world), floor(B*(r+1)/world)) of the global batch (uneven slices allowed; may be empty).
  // With `unit` > 1 the batch is cut into S = ceil(B / unit) runs of `unit` positions (the last may
  // be shorter) and rank r gets runs [floor(S*r/world), floor(S*(r+1)/world)): whole runs only.
  std::vector<uint64_t> slice(size_t step, size_t rank, size_t world, size_t unit = 1) const;
  // The most samples slice() gives one rank of `world` with `unit`.
  size_t largest_slice(size_t world, size_t unit = 1) const;
  // The whole permutation, (dataset_size).
  const std::vector<uint64_t>& order() const { return order_; }

  size_t dataset_size() const { return order_.size(); }
  size_t global_batch() const { return global_batch_; }

 private:
  void check_step(size_t step) const;

  std::vector<uint64_t> order_;  // (dataset_size)
  size_t global_batch_;
  size_t num_steps_;
};

}  // namespace dptrain
