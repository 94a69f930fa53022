// StagingCommunicator over one process, with "device" buffers in host memory: the data goes
// device -> host -> communicator -> device, and the other collectives pass straight through.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "comm/device_communicator.h"
#include "comm/staging_communicator.h"
#include "runtime/core/errors.h"
#include "tests/comm/host_device_runtime.h"

namespace dptrain::testing {
namespace {

constexpr Deadline kDeadline{std::chrono::seconds(10)};

TEST(StagingCommunicator, StagesEveryAllReduceThroughTheHost) {
  SingleProcessCommunicator host;
  HostDeviceRuntime runtime;
  StagingCommunicator comm(host, runtime);
  EXPECT_EQ(comm.size(), 1u);
  EXPECT_EQ(comm.rank(), 0u);
  EXPECT_STREQ(comm.backend(), "single (staged through host memory)");
  std::vector<float> device = {1, 2, 3, 4};
  auto request = comm.all_reduce_sum_async(device.data(), device.size());
  EXPECT_EQ(runtime.to_host, 1u);
  request->wait(kDeadline);
  EXPECT_TRUE(request->test());
  EXPECT_EQ(runtime.to_device, 1u);
  EXPECT_EQ(device, (std::vector<float>{1, 2, 3, 4}));
  request->wait(kDeadline);
  EXPECT_EQ(runtime.to_device, 1u) << "a finished request copied back twice";
}

TEST(StagingCommunicator, HostCollectivesPassThrough) {
  SingleProcessCommunicator host;
  HostDeviceRuntime runtime;
  StagingCommunicator comm(host, runtime);
  int value = 7, gathered = 0;
  comm.all_gather(&value, sizeof value, &gathered, kDeadline);
  EXPECT_EQ(gathered, 7);
  EXPECT_THROW(comm.broadcast(&value, sizeof value, 1, kDeadline), CommError);
  EXPECT_EQ(runtime.to_host + runtime.to_device, 0u);
}

TEST(DeviceCommunicator, CpuGradientsUseTheHostCommunicator) {
  SingleProcessCommunicator host;
  for (DeviceTransport t : {DeviceTransport::Auto, DeviceTransport::Nccl, DeviceTransport::Staging}) {
    EXPECT_EQ(make_device_communicator(host, DeviceKind::CPU, kDeadline, t), nullptr) << to_string(t);
  }
}

TEST(DeviceCommunicator, NcclRegistersItselfExactlyInCudaBuilds) {
  const bool cuda_build = std::string(DPTRAIN_BACKENDS).find("cuda") != std::string::npos;
  EXPECT_EQ(has_device_transport(DeviceTransport::Nccl, "cuda"), cuda_build) << DPTRAIN_BACKENDS;
  EXPECT_FALSE(has_device_transport(DeviceTransport::Nccl, "cpu"));
}

}  // namespace
}  // namespace dptrain::testing
