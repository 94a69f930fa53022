// StagingCommunicator: collectives on device buffers for a host-memory communicator, by copying
// each buffer to the host, reducing it there, and copying the result back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "runtime/core/backend.h"

namespace dptrain {

// The fallback where NCCL is not available (or not wanted): float all-reduces take pointers to
// `device`'s memory and go device -> host -> `host` communicator (MPI) -> device. The copy to the host
// is queued after the work already on the compute stream, so a bucket announced by the
// backward pass is copied once it is final. Other collectives work on host memory and are
// passed to `host` unchanged.
class StagingCommunicator final : public Communicator {
 public:
  StagingCommunicator(Communicator& host, Backend& device) : host_(host), device_(device) {}

  using Communicator::all_reduce_sum;
  const char* backend() const override { return backend_.c_str(); }
  size_t rank() const override { return host_.rank(); }
  size_t size() const override { return host_.size(); }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float* device_data, size_t count) override;
  void all_reduce_sum(double* data, size_t count, Deadline deadline) override {
    host_.all_reduce_sum(data, count, deadline);
  }
  void broadcast(void* data, size_t bytes, size_t root, Deadline deadline) override {
    host_.broadcast(data, bytes, root, deadline);
  }
  void barrier(Deadline deadline) override { host_.barrier(deadline); }
  void all_gather(const void* send, size_t bytes_each, void* recv, Deadline deadline) override {
    host_.all_gather(send, bytes_each, recv, deadline);
  }
  std::vector<std::string> gather_bytes(const std::string& send, size_t root, Deadline deadline) override {
    return host_.gather_bytes(send, root, deadline);
  }

 private:
  Communicator& host_;
  Backend& device_;  // whose memory the float all-reduces take
  std::string backend_ = std::string(host_.backend()) + " (staged through host memory)";
};

}  // namespace dptrain
