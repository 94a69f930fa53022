// NcclCommunicator: the Communicator for device memory over NCCL.
#pragma once

#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "runtime/core/cuda/cuda_context.h"

namespace dptrain {

// Throws CommError naming the call, file:line, host and rank, and NCCL's own message.
void nccl_check(ncclResult_t result, ncclComm_t comm, const char* call, const char* file, int line);
#define DPTRAIN_NCCL_CHECK(comm, call) ::dptrain::nccl_check((call), (comm), #call, __FILE__, __LINE__)

// NCCL over the ranks of a host communicator, on the GPU of `cuda`. Rank 0
// creates the unique id and broadcasts it through `host` (MPI); the communicator is created in
// NCCL's non-blocking mode and polled, so a rank that never shows up ends in a CommError.
//
// Float all-reduces take device pointers: each waits (with an event) for the work queued so far
// on the compute stream, runs on the communicator's own stream, and records an event that
// test()/wait() poll together with ncclCommGetAsyncError. A failure or a missed deadline aborts
// the NCCL communicator (it cannot be used again) and throws a CommError naming this rank.
// The other collectives work on host memory and go through `host`.
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, CudaContext& cuda, Deadline init_deadline);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  using Communicator::all_reduce_sum;
  const char* backend() const override { return "nccl"; }
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

  // Polls the communicator until no operation is in progress, or `deadline` passes; on an error
  // or a timeout aborts it and throws CommError saying what (`what`) did not finish.
  void settle(Deadline deadline, const std::string& what);
  // Polls `done` (and the communicator) until it completes; aborts and throws as settle() does.
  void wait_event(const CudaEvent& done, Deadline deadline, const std::string& what);

 private:
  // Aborts the NCCL communicator and throws CommError with `reason`.
  [[noreturn]] void abort_with(const std::string& reason);

  Communicator& host_;
  CudaContext& cuda_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;  // all-reduces run here
  bool aborted_ = false;
};

}  // namespace dptrain
