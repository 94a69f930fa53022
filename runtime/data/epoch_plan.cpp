#include "runtime/data/epoch_plan.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"

namespace dptrain {

EpochPlan::EpochPlan(size_t dataset_size, size_t global_batch, uint64_t seed, uint64_t epoch, DropLast drop_last,
                     Shuffle shuffle)
    : order_(dataset_size), global_batch_(global_batch) {
  if (global_batch == 0) throw ConfigError("EpochPlan: the global batch size must be at least 1");
  std::iota(order_.begin(), order_.end(), uint64_t{0});
  if (shuffle == Shuffle::Yes) {
    // Fisher-Yates: position i swaps with a uniform position in [0, i].
    Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Shuffle), epoch));
    for (size_t i = dataset_size; i > 1; --i) {
      const size_t j = static_cast<size_t>(rng.below(i));
      std::swap(order_[i - 1], order_[j]);
    }
  }
  num_steps_ =
      drop_last == DropLast::Yes ? dataset_size / global_batch : (dataset_size + global_batch - 1) / global_batch;
}

void EpochPlan::check_step(size_t step) const {
  if (step >= num_steps_) {
    throw Error("EpochPlan: step " + std::to_string(step) + " out of range (the epoch has " +
                std::to_string(num_steps_) + " steps)");
  }
}

size_t EpochPlan::batch_size(size_t step) const {
  check_step(step);
  return std::min(global_batch_, order_.size() - step * global_batch_);
}

std::vector<uint64_t> EpochPlan::batch(size_t step) const {
  const size_t size = batch_size(step);
  const auto begin = order_.begin() + static_cast<std::ptrdiff_t>(step * global_batch_);
  return std::vector<uint64_t>(begin, begin + static_cast<std::ptrdiff_t>(size));
}

std::vector<uint64_t> EpochPlan::slice(size_t step, size_t rank, size_t world, size_t unit) const {
  if (world == 0 || rank >= world) {
    throw Error("EpochPlan: rank " + std::to_string(rank) + " is not in a world of " + std::to_string(world));
  }
  const size_t size = batch_size(step);
  unit = std::max<size_t>(unit, 1);
  const size_t runs = (size + unit - 1) / unit;
  const size_t lo = std::min(size, runs * rank / world * unit), hi = std::min(size, runs * (rank + 1) / world * unit);
  const auto begin = order_.begin() + static_cast<std::ptrdiff_t>(step * global_batch_);
  return std::vector<uint64_t>(begin + static_cast<std::ptrdiff_t>(lo), begin + static_cast<std::ptrdiff_t>(hi));
}

size_t EpochPlan::largest_slice(size_t world, size_t unit) const {
  unit = std::max<size_t>(unit, 1);
  const size_t runs = (global_batch_ + unit - 1) / unit;
  return (runs + world - 1) / std::max<size_t>(world, 1) * unit;
}

}  // namespace dptrain
