// Gradient all-reduce of device buffers across ranks: NCCL on GPUs (one per rank), and the
// host-staging fallback (which also runs without a GPU, with host memory standing in).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/device_communicator.h"
#include "comm/mpi/mpi_communicator.h"
#include "comm/mpi/world.h"
#include "comm/reducer.h"
#include "comm/staging_communicator.h"
#include "runtime/core/context.h"
#include "runtime/core/tensor.h"
#include "tests/runtime/core/host_backend.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

constexpr Deadline kDeadline{std::chrono::seconds(60)};

// Rank r holds r + 1 + i / 1000 at i; the sum over `world` ranks is known.
std::vector<float> rank_values(size_t rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = static_cast<float>(rank + 1) + static_cast<float>(i % 1000) / 1000.0f;
  return v;
}
float expected_sum(size_t world, size_t i) {
  return static_cast<float>(world * (world + 1) / 2) + static_cast<float>(world) * static_cast<float>(i % 1000) / 1000.0f;
}

TEST(StagedAllReduce, SumsDeviceBuffersThroughMpi) {
  MpiCommunicator host(MPI_COMM_WORLD);
  HostBackend device;
  StagingCommunicator comm(host, device);
  const size_t count = 100003;
  std::vector<float> grads = rank_values(comm.rank(), count);
  GradientReducer reducer(comm, grads.data(), count, 64 * 1024, kDeadline);
  reducer.begin_step();
  reducer.ready(count / 2, count);
  reducer.ready(0, count / 2);
  reducer.finish();
  for (size_t i = 0; i < count; ++i) ASSERT_FLOAT_EQ(grads[i], expected_sum(comm.size(), i)) << i;
  EXPECT_EQ(device.to_host, reducer.buckets().size());
  EXPECT_EQ(device.to_device, reducer.buckets().size());
}

TEST(NcclAllReduce, SumsDeviceBuffersBucketByBucket) {
  MpiCommunicator host(MPI_COMM_WORLD);
  const LocalRank local = discover_local_rank(MPI_COMM_WORLD);
  std::string why;
  const size_t gpus = visible_gpu_count(&why);
  if (gpus == 0) GTEST_SKIP() << "no CUDA device visible: " << why;
  if (gpus < local.size) GTEST_SKIP() << "no CUDA device visible for every rank: " << gpus << " GPUs for " << local.size << " ranks on this node";
  Context context(DeviceKind::CUDA, 1, local.size, local.rank);
  auto comm = make_device_communicator(host, context.backend(), kDeadline, DeviceTransport::Nccl);
  ASSERT_STREQ(comm->backend(), "nccl");
  const size_t count = 1000003;
  const std::vector<float> values = rank_values(comm->rank(), count);
  Tensor host_values({count});
  std::copy(values.begin(), values.end(), host_values.data());
  Tensor grads = host_values.to(context.backend());
  GradientReducer reducer(*comm, grads.data(), count, 1 << 20, kDeadline);
  reducer.begin_step();
  reducer.ready(0, count);
  reducer.finish();
  const Tensor result = grads.to_host();
  for (size_t i = 0; i < count; ++i) ASSERT_FLOAT_EQ(result.data()[i], expected_sum(comm->size(), i)) << i;
}

}  // namespace
}  // namespace dptrain::testing
