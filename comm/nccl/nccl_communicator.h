// NcclCommunicator: the Communicator for device memory over NCCL.
#pragma once

#include <nccl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/completion_watchdog.h"
#include "comm/reuse_pool.h"
#include "layers/layer.h"
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
// on the compute stream, runs on the communicator's own stream, and records a completion event
// (from a pool: none is created per call). wait() does not block the host: the compute stream
// waits on that event, and the communicator's watchdog thread watches it against the deadline
// together with ncclCommGetAsyncError. A failure or a missed deadline aborts the NCCL communicator
// (it cannot be used again); the next call on this communicator or its requests throws a
// CommError naming this rank and the all-reduce that was waited on. The other collectives work on
// host memory and go through `host`.
//
// It is also the CrossWorkerSum of batch statistics in device memory: sum() queues an all-reduce of
// doubles on the same communicator and in the same order of collectives as the gradient buckets
// (every rank makes the same calls in the same order: Model::idle_step mirrors a step's), and the
// compute stream waits for it as for a bucket, under `deadline` and the watchdog.
class NcclCommunicator final : public Communicator, public CrossWorkerSum {
 public:
  // `deadline`: for creating the communicator, and for each batch-statistics sum.
  NcclCommunicator(Communicator& host, CudaContext& cuda, Deadline deadline);
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

  // CrossWorkerSum: `count` doubles of device memory summed in place over every rank (ncclDouble),
  // after the compute stream's work so far; the compute stream's later work waits for the sum (an
  // event) and the watchdog watches it against the deadline. Does not block the host.
  SumMemory memory() const override { return SumMemory::Device; }
  void sum(double* device_values, size_t count) override;

  // Puts the all-reduce that records `done` before the compute stream's later work (the stream
  // waits on the event) and has the watchdog watch it until `deadline` from now; `what` names it.
  // Does not block the host.
  void order_after(const std::shared_ptr<CudaEvent>& done, Deadline deadline, const std::string& what);
  // Throws the CommError of an earlier failure (the watchdog's, or an abort), if any.
  void check_failure() const;

 private:
  // Queues an in-place all-reduce of `count` values of `type` at `device_data` on stream_, after the
  // compute stream's work so far, numbered and named by `describe(number)`; returns its completion
  // event and sets `what` to its name. Takes mutex_.
  std::shared_ptr<CudaEvent> start_all_reduce(void* device_data, size_t count, ncclDataType_t type,
                                              const std::string& values, std::string& what);
  // Polls the communicator until no operation is in progress, or `deadline` passes; on an error
  // or a timeout aborts it and throws CommError saying what (`what`) did not finish. Called with
  // mutex_ held (or before the watchdog runs).
  void settle(Deadline deadline, const std::string& what);
  // Aborts the NCCL communicator and throws CommError with `reason` (mutex_ held).
  [[noreturn]] void abort_with(const std::string& reason);
  // The watchdog's hooks: abort (from its thread) and the communicator's asynchronous error.
  void abort_from_watchdog(const std::string& failure);
  std::string async_error();

  Communicator& host_;
  CudaContext& cuda_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;  // all-reduces run here
  mutable std::mutex mutex_;       // guards comm_ and aborted_ between this thread and the watchdog's
  bool aborted_ = false;
  std::string abort_reason_;         // why it was aborted
  CudaEvent ready_;                  // recorded on the compute stream before each all-reduce
  ReusePool<CudaEvent> done_events_;  // each all-reduce's completion event
  size_t started_ = 0;                // all-reduces started: the same numbering on every rank
  Deadline deadline_;                 // for each batch-statistics sum
  std::unique_ptr<CompletionWatchdog> watchdog_;  // declared last: stopped first
};

}  // namespace dptrain
