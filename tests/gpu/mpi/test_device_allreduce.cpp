// Gradient all-reduce of device buffers across ranks: NCCL on GPUs (one per rank), and the
// host-staging fallback (which also runs without a GPU, with host memory standing in); and the
// batch-statistics sums of doubles that NCCL queues between the gradient buckets.
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
#include "layers/layer.h"
#include "runtime/core/context.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
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

// The NCCL tests need one visible GPU for every rank on the node; they skip, saying why, otherwise.
class NcclAllReduce : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    const size_t gpus = visible_gpu_count(&why);
    if (gpus == 0) GTEST_SKIP() << "no CUDA device visible: " << why;
    if (gpus < local_.size) GTEST_SKIP() << "no CUDA device visible for every rank: " << gpus << " GPUs for " << local_.size << " ranks on this node";
  }

  MpiCommunicator host_{MPI_COMM_WORLD};
  const LocalRank local_ = discover_local_rank(MPI_COMM_WORLD);
};

TEST_F(NcclAllReduce, SumsDeviceBuffersBucketByBucket) {
  Context context(DeviceKind::CUDA, 1, local_.size, local_.rank);
  auto comm = make_device_communicator(host_, context.backend(), kDeadline, DeviceTransport::Nccl);
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

TEST_F(NcclAllReduce, SumsBatchStatisticsBetweenBuckets) {
  Context context(DeviceKind::CUDA, 1, local_.size, local_.rank);
  auto comm = make_device_communicator(host_, context.backend(), kDeadline, DeviceTransport::Nccl);
  auto* stats = dynamic_cast<CrossWorkerSum*>(comm.get());
  ASSERT_NE(stats, nullptr);
  ASSERT_EQ(stats->memory(), SumMemory::Device);
  cudaStream_t stream = cuda_context(context.backend()).stream();
  // Rank r holds r + 1 + i / 4 at i: sums of quarters are exact in double.
  const size_t doubles = 2 * 64 + 1;
  std::vector<double> mine(doubles);
  for (size_t i = 0; i < doubles; ++i) mine[i] = static_cast<double>(comm->rank() + 1) + static_cast<double>(i) / 4;
  DeviceBuffer buffer;
  auto* device = static_cast<double*>(buffer.reserve(doubles * sizeof(double)));
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device, mine.data(), doubles * sizeof(double), cudaMemcpyHostToDevice, stream));
  const size_t count = 100003;
  const std::vector<float> values = rank_values(comm->rank(), count);
  Tensor host_values({count});
  std::copy(values.begin(), values.end(), host_values.data());
  Tensor grads = host_values.to(context.backend());
  GradientReducer reducer(*comm, grads.data(), count, 64 * 1024, kDeadline);
  reducer.begin_step();
  reducer.ready(count / 2, count);
  stats->sum(device, doubles);  // between buckets, as a batch-norm layer's backward pass does
  reducer.ready(0, count / 2);
  reducer.finish();
  std::vector<double> summed(doubles);
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(summed.data(), device, doubles * sizeof(double), cudaMemcpyDeviceToHost, stream));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  const double world = static_cast<double>(comm->size());
  for (size_t i = 0; i < doubles; ++i) ASSERT_EQ(summed[i], world * (world + 1) / 2 + world * static_cast<double>(i) / 4) << i;
  const Tensor result = grads.to_host();
  for (size_t i = 0; i < count; ++i) ASSERT_FLOAT_EQ(result.data()[i], expected_sum(comm->size(), i)) << i;
}

}  // namespace
}  // namespace dptrain::testing
