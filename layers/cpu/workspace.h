// PerThreadBuffers: scratch memory for OpenMP workers, owned by the layer that uses it.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/core/tensor.h"

namespace dptrain {

// One float buffer per OpenMP thread. Buffers only grow: once sized for a layer's largest batch
// they are reused by every later call without reallocation. Not safe to resize inside a parallel region.
class PerThreadBuffers {
 public:
  // Makes sure there are at least `threads` buffers of at least `floats` floats each.
  void reserve(size_t threads, size_t floats) {
    if (floats > floats_) {
      buffers_.clear();
      floats_ = floats;
    }
    while (buffers_.size() < threads) buffers_.emplace_back(Shape{floats_});
  }
  // The buffer of thread `thread` (64-byte aligned, `floats()` long).
  float* get(size_t thread) { return buffers_.at(thread).data(); }
  size_t floats() const { return floats_; }

 private:
  std::vector<Tensor> buffers_;  // threads x (floats_)
  size_t floats_ = 0;
};

}  // namespace dptrain
