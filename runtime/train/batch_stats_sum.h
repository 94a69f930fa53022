// BatchStatsSum: batch-norm statistics summed over the workers of a job, with the job's deadline,
// and the choice between that host sum and a device transport's own.
#pragma once

#include "comm/communicator.h"
#include "layers/layer.h"

namespace dptrain {

// The CrossWorkerSum of host memory a Trainer hands its layers: a blocking all-reduce of doubles
// over the host communicator (the gradient buckets travel on a communicator of their own, so the
// two never mix).
class BatchStatsSum final : public CrossWorkerSum {
 public:
  BatchStatsSum(Communicator& comm, Deadline deadline) : comm_(comm), deadline_(deadline) {}

  void sum(double* values, size_t count) override {
    if (comm_.size() > 1) comm_.all_reduce_sum(values, count, deadline_);
  }

 private:
  Communicator& comm_;
  Deadline deadline_;
};

// The CrossWorkerSum a step's batch statistics use: the gradients' device communicator itself where
// it sums device memory (NCCL: queued on the compute stream's order, the host never waits; its
// sums and the gradient buckets are collectives of one communicator, in the same order on every
// rank), else `host` (on the CPU, or a GPU whose gradients are staged through the host).
// `device`: the device communicator, null on the CPU.
inline CrossWorkerSum& choose_batch_stats_sum(Communicator* device, CrossWorkerSum& host) {
  auto* on_device = dynamic_cast<CrossWorkerSum*>(device);
  return on_device && on_device->memory() == SumMemory::Device ? *on_device : host;
}

}  // namespace dptrain
