// BatchStatsSum: batch-norm statistics summed over the workers of a job, with the job's deadline.
#pragma once

#include "comm/communicator.h"
#include "layers/layer.h"

namespace dptrain {

// The CrossWorkerSum a Trainer hands its layers: a blocking all-reduce of doubles over the host
// communicator (the gradient buckets travel on a communicator of their own, so the two never mix).
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

}  // namespace dptrain
