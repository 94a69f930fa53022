#include "runtime/core/cuda/batch_stager.h"

#include <cstring>
#include <string>

#include "runtime/core/cuda/cuda_check.h"

namespace dptrain {

CudaBatchStager::CudaBatchStager(CudaContext& context, size_t max_floats, size_t max_labels)
    : context_(context),
      max_floats_(max_floats),
      max_labels_(max_labels),
      label_offset_((max_floats * sizeof(float) + 255) / 256 * 256) {
  const size_t bytes = label_offset_ + max_labels * sizeof(int32_t) + 1;
  for (Slot& slot : slots_) {
    DPTRAIN_CUDA_CHECK(cudaMallocHost(&slot.host, bytes));
    DPTRAIN_CUDA_CHECK(cudaMalloc(&slot.device, bytes));
  }
}

CudaBatchStager::~CudaBatchStager() {
  cudaStreamSynchronize(context_.copy_stream());
  for (Slot& slot : slots_) {
    if (slot.host) cudaFreeHost(slot.host);
    if (slot.device) cudaFree(slot.device);
  }
}

DeviceBatch CudaBatchStager::upload(const float* inputs, size_t count, const int32_t* labels, size_t n) {
  if (count > max_floats_ || n > max_labels_) {
    throw ShapeError("batch of " + std::to_string(n) + " samples (" + std::to_string(count) +
                     " floats) exceeds the staging buffers sized for " + std::to_string(max_labels_) + " (" +
                     std::to_string(max_floats_) + " floats)");
  }
  // The previous slot's batch is read only by work queued so far on the compute stream.
  Slot& previous = slots_[(next_ + 1) % 2];
  if (previous.used) previous.released.record(context_.stream());

  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % 2;
  if (slot.used) DPTRAIN_CUDA_CHECK(cudaEventSynchronize(slot.copied.get()));
  auto* host = static_cast<char*>(slot.host);
  auto* device = static_cast<char*>(slot.device);
  std::memcpy(host, inputs, count * sizeof(float));
  std::memcpy(host + label_offset_, labels, n * sizeof(int32_t));

  cudaStream_t copy = context_.copy_stream();
  if (slot.used) DPTRAIN_CUDA_CHECK(cudaStreamWaitEvent(copy, slot.released.get(), 0));
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device, host, count * sizeof(float), cudaMemcpyHostToDevice, copy));
  DPTRAIN_CUDA_CHECK(
      cudaMemcpyAsync(device + label_offset_, host + label_offset_, n * sizeof(int32_t), cudaMemcpyHostToDevice, copy));
  slot.copied.record(copy);
  DPTRAIN_CUDA_CHECK(cudaStreamWaitEvent(context_.stream(), slot.copied.get(), 0));
  slot.used = true;
  return {reinterpret_cast<const float*>(device), reinterpret_cast<const int32_t*>(device + label_offset_)};
}

}  // namespace dptrain
