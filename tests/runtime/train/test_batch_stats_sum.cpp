// Which CrossWorkerSum a training step's batch statistics get: the host sum on the CPU or where the
// gradients are staged through the host, the device communicator's own where it sums device memory.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/train/batch_stats_sum.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

// A device communicator that also sums batch statistics in its own memory, as NCCL does (here the
// identity: one worker).
class DeviceSummingCommunicator final : public Communicator, public CrossWorkerSum {
 public:
  using Communicator::all_reduce_sum;
  const char* backend() const override { return "device-summing"; }
  size_t rank() const override { return 0; }
  size_t size() const override { return 2; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float* data, size_t count) override {
    return single_.all_reduce_sum_async(data, count);
  }
  void all_reduce_sum(double*, size_t, Deadline) override {}
  void broadcast(void*, size_t, size_t, Deadline) override {}
  void barrier(Deadline) override {}
  void all_gather(const void* send, size_t bytes_each, void* recv, Deadline deadline) override {
    single_.all_gather(send, bytes_each, recv, deadline);
  }
  SumMemory memory() const override { return memory_; }
  void sum(double*, size_t count) override { calls.push_back(count); }

  SumMemory memory_ = SumMemory::Device;
  std::vector<size_t> calls;

 private:
  SingleProcessCommunicator single_;
};

TEST(BatchStatsSum, ACpuModelSumsOnTheHost) {
  SingleProcessCommunicator host;
  BatchStatsSum host_sum(host, Deadline(1000));
  EXPECT_EQ(&choose_batch_stats_sum(nullptr, host_sum), &host_sum);
  EXPECT_EQ(host_sum.memory(), SumMemory::Host);
}

TEST(BatchStatsSum, GradientsStagedThroughTheHostLeaveTheStatisticsOnTheHost) {
  SingleProcessCommunicator host, staging;  // a communicator that is no CrossWorkerSum
  BatchStatsSum host_sum(host, Deadline(1000));
  EXPECT_EQ(&choose_batch_stats_sum(&staging, host_sum), &host_sum);
}

TEST(BatchStatsSum, ADeviceCommunicatorThatSumsDeviceMemorySumsTheStatisticsItself) {
  SingleProcessCommunicator host;
  BatchStatsSum host_sum(host, Deadline(1000));
  DeviceSummingCommunicator device;
  CrossWorkerSum& chosen = choose_batch_stats_sum(&device, host_sum);
  EXPECT_EQ(&chosen, static_cast<CrossWorkerSum*>(&device));
  EXPECT_EQ(chosen.memory(), SumMemory::Device);
  double values[3] = {1, 2, 3};
  chosen.sum(values, 3);
  EXPECT_EQ(device.calls, (std::vector<size_t>{3}));
}

TEST(BatchStatsSum, ACommunicatorWhoseSumTakesHostMemoryIsNotChosen) {
  SingleProcessCommunicator host;
  BatchStatsSum host_sum(host, Deadline(1000));
  DeviceSummingCommunicator device;
  device.memory_ = SumMemory::Host;
  EXPECT_EQ(&choose_batch_stats_sum(&device, host_sum), &host_sum);
}

TEST(BatchStatsSum, OneWorkerLeavesTheValues) {
  SingleProcessCommunicator host;
  BatchStatsSum host_sum(host, Deadline(1000));
  double values[2] = {4.5, -1};
  host_sum.sum(values, 2);
  EXPECT_EQ(values[0], 4.5);
  EXPECT_EQ(values[1], -1);
}

}  // namespace
}  // namespace dptrain
