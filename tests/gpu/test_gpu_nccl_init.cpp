// Handles owned by RAII from their creation: a CudaStream is destroyed with its owner or handed over
// with release(), and an NcclCommunicator whose NCCL initialisation fails throws a CommError after
// releasing the stream it had created (the constructor's owner does; a leak itself cannot be
// observed from here, so the test checks the failing path runs and can be repeated). Skipped
// without a GPU.
#include <gtest/gtest.h>

#include <string>

#include "comm/nccl/nccl_communicator.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/errors.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// A host communicator that describes an impossible job (rank 1 of 0 ranks), so that
// ncclCommInitRankConfig refuses it at once with ncclInvalidArgument, without any network wait.
class ImpossibleHost final : public Communicator {
 public:
  using Communicator::all_reduce_sum;
  const char* backend() const override { return "impossible"; }
  size_t rank() const override { return 1; }
  size_t size() const override { return 0; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float*, size_t) override {
    throw CommError("impossible host: no all-reduce");
  }
  void all_reduce_sum(double*, size_t, Deadline) override {}
  void broadcast(void*, size_t, size_t, Deadline) override {}
  void barrier(Deadline) override {}
  void all_gather(const void*, size_t, void*, Deadline) override {}
};

class GpuHandleTest : public GpuTest {};

TEST_F(GpuHandleTest, AStreamIsOwnedUntilReleased) {
  cudaStream_t handed_over = nullptr;
  {
    CudaStream stream;
    ASSERT_NE(stream.get(), nullptr);
    DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    handed_over = stream.release();
    EXPECT_EQ(stream.get(), nullptr);
  }
  // Still valid after its former owner is gone: release() handed it over.
  EXPECT_EQ(cudaStreamSynchronize(handed_over), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(handed_over), cudaSuccess);
}

TEST_F(GpuHandleTest, AFailedNcclInitialisationThrowsAndCanBeRepeated) {
  ImpossibleHost host;
  for (int attempt = 0; attempt < 20; ++attempt) {
    try {
      NcclCommunicator comm(host, cuda_context(gpu()), Deadline(5000));
      FAIL() << "NCCL accepted rank 1 of 0 ranks";
    } catch (const CommError& e) {
      EXPECT_NE(std::string(e.what()).find("ncclCommInitRankConfig"), std::string::npos) << e.what();
    }
  }
  // The device is still usable afterwards.
  EXPECT_EQ(cudaStreamSynchronize(cuda_context(gpu()).stream()), cudaSuccess);
}

}  // namespace
}  // namespace dptrain::testing
