// BatchLoader: decodes the next batch on a background thread while the current one trains.
#pragma once

#include <cstdint>
#include <future>
#include <vector>

#include "runtime/dataset.h"
#include "runtime/tensor.h"

namespace dptrain {

// One worker's share of a global batch, on the host.
struct Batch {
  Tensor inputs;                 // (N, C, H, W)
  std::vector<int32_t> labels;   // (N)
  std::vector<uint64_t> ids;     // (N) global sample indices
};

// Double-buffered loading: `prefetch` starts filling one slot in the background; `next` waits
// for it and hands it over, valid until the next call to `next`. Errors (a bad file) surface
// from `next` as the exception the data set threw.
class BatchLoader {
 public:
  BatchLoader(const Dataset& dataset, size_t max_batch);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  void prefetch(std::vector<uint64_t> ids);
  Batch& next();
  // Seconds `next` spent waiting for data since construction.
  double wait_seconds() const { return wait_seconds_; }

 private:
  void fill(Batch& batch);

  const Dataset& dataset_;
  size_t max_batch_;
  Batch slots_[2];
  Tensor storage_[2];            // (max_batch, C, H, W) per slot
  size_t filling_ = 0;           // slot the pending prefetch writes
  std::future<void> pending_;
  double wait_seconds_ = 0;
};

}  // namespace dptrain
