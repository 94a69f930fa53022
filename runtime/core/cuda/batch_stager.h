// CudaBatchStager: the CUDA BatchStager (pinned host slots, a copy stream, events).
#pragma once

#include <array>
#include <memory>

#include "runtime/core/backend.h"
#include "runtime/core/cuda/cuda_context.h"

namespace dptrain {

// Two slots, each a pinned host buffer and a device buffer for inputs and labels. Upload k uses
// slot k % 2: it waits (on the host) until the slot's previous host-to-device copy is done,
// fills the pinned buffer, and queues the copy on the copy stream after the compute stream has
// finished the work queued before upload k - 1 (the last user of that slot's device buffer).
class CudaBatchStager final : public BatchStager {
 public:
  CudaBatchStager(CudaContext& context, size_t max_floats, size_t max_labels);
  ~CudaBatchStager() override;
  CudaBatchStager(const CudaBatchStager&) = delete;
  CudaBatchStager& operator=(const CudaBatchStager&) = delete;

  DeviceBatch upload(const float* inputs, size_t count, const int32_t* labels, size_t n) override;

 private:
  // One staging slot.
  struct Slot {
    void* host = nullptr;    // pinned: inputs then labels
    void* device = nullptr;  // the same layout on the device
    CudaEvent copied;        // recorded on the copy stream after the slot's copy
    CudaEvent released;      // recorded on the compute stream once the slot's batch is no longer read
    bool used = false;
  };

  CudaContext& context_;
  size_t max_floats_, max_labels_;
  size_t label_offset_;  // bytes from the start of a slot to its labels
  std::array<Slot, 2> slots_;
  size_t next_ = 0;
};

}  // namespace dptrain
