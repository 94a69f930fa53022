// StagingCommunicator over one process, with "device" buffers in host memory: the data goes
// device -> host -> communicator -> device, and the other collectives pass straight through.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "comm/device_communicator.h"
#include "comm/staging_communicator.h"
#include "runtime/core/backend_registry.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "tests/runtime/core/host_backend.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

constexpr Deadline kDeadline{std::chrono::seconds(10)};

TEST(StagingCommunicator, StagesEveryAllReduceThroughTheHost) {
  SingleProcessCommunicator host;
  HostBackend device;
  StagingCommunicator comm(host, device);
  EXPECT_EQ(comm.size(), 1u);
  EXPECT_EQ(comm.rank(), 0u);
  EXPECT_STREQ(comm.backend(), "single (staged through host memory)");
  std::vector<float> buffer = {1, 2, 3, 4};
  auto request = comm.all_reduce_sum_async(buffer.data(), buffer.size());
  EXPECT_EQ(device.to_host, 1u);
  request->wait(kDeadline);
  EXPECT_TRUE(request->test());
  EXPECT_EQ(device.to_device, 1u);
  EXPECT_EQ(buffer, (std::vector<float>{1, 2, 3, 4}));
  request->wait(kDeadline);
  EXPECT_EQ(device.to_device, 1u) << "a finished request copied back twice";
}

TEST(StagingCommunicator, HostCollectivesPassThrough) {
  SingleProcessCommunicator host;
  HostBackend device;
  StagingCommunicator comm(host, device);
  int value = 7, gathered = 0;
  comm.all_gather(&value, sizeof value, &gathered, kDeadline);
  EXPECT_EQ(gathered, 7);
  EXPECT_THROW(comm.broadcast(&value, sizeof value, 1, kDeadline), CommError);
  EXPECT_EQ(device.to_host + device.to_device, 0u);
}

TEST(DeviceCommunicator, CpuGradientsUseTheHostCommunicator) {
  SingleProcessCommunicator host;
  CpuBackend cpu;
  for (DeviceTransport t : {DeviceTransport::Auto, DeviceTransport::Nccl, DeviceTransport::Staging}) {
    EXPECT_EQ(make_device_communicator(host, cpu, kDeadline, t), nullptr) << to_string(t);
  }
}

TEST(DeviceCommunicator, DeviceGradientsWithoutADirectTransportAreStaged) {
  SingleProcessCommunicator host;
  HostBackend device;
  for (DeviceTransport t : {DeviceTransport::Auto, DeviceTransport::Staging}) {
    auto comm = make_device_communicator(host, device, kDeadline, t);
    ASSERT_NE(comm, nullptr) << to_string(t);
    EXPECT_STREQ(comm->backend(), "single (staged through host memory)") << to_string(t);
  }
}

TEST(DeviceCommunicator, NcclWhereTheBuildHasNoneNamesTheKey) {
  SingleProcessCommunicator host;
  HostBackend device;  // a backend no NCCL transport is registered for
  try {
    make_device_communicator(host, device, kDeadline, DeviceTransport::Nccl);
    FAIL() << "no error for a missing NCCL transport";
  } catch (const CommError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("comm.device_transport"), std::string::npos) << msg;
    EXPECT_NE(msg.find("host-test"), std::string::npos) << msg;
    EXPECT_NE(msg.find("staging or auto"), std::string::npos) << msg;
  }
}

TEST(DeviceCommunicator, NcclRegistersItselfExactlyInCudaBuilds) {
  const std::vector<std::string> built = built_backends();
  const bool cuda_build = std::find(built.begin(), built.end(), "cuda") != built.end();
  EXPECT_EQ(has_device_transport(DeviceTransport::Nccl, "cuda"), cuda_build);
  EXPECT_FALSE(has_device_transport(DeviceTransport::Nccl, "cpu"));
}

}  // namespace
}  // namespace dptrain::testing
