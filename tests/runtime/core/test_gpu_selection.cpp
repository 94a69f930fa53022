// Which visible GPU a worker binds to: its own when it sees just one, its local rank's otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>

#include "runtime/core/errors.h"
#include "runtime/core/gpu_selection.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

// Slurm --gpus-per-task=1 or CUDA_VISIBLE_DEVICES per task: every worker sees one GPU, ordinal 0.
TEST(GpuSelection, AWorkerThatSeesOneGpuUsesItWhateverItsLocalRank) {
  EXPECT_EQ(gpu_for_worker(1, 1, 0), 0u);
  EXPECT_EQ(gpu_for_worker(1, 4, 3), 0u);
  EXPECT_EQ(gpu_for_worker(1, 8, 7), 0u);
}

TEST(GpuSelection, WithSeveralVisibleTheLocalRankChooses) {
  EXPECT_EQ(gpu_for_worker(8, 8, 0), 0u);
  EXPECT_EQ(gpu_for_worker(8, 8, 5), 5u);
  EXPECT_EQ(gpu_for_worker(4, 2, 1), 1u);
}

TEST(GpuSelection, MoreWorkersThanSeveralGpusIsAClearUsageError) {
  for (const auto& [workers, rank] : std::initializer_list<std::pair<size_t, size_t>>{{3, 0}, {2, 2}}) {
    try {
      gpu_for_worker(2, workers, rank);
      FAIL() << workers << " workers (local rank " << rank << ") accepted on 2 GPUs";
    } catch (const UsageError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(std::max(workers, rank + 1)) + " workers on this node but only 2 GPUs"),
                std::string::npos)
          << msg;
      EXPECT_NE(msg.find("--gpus-per-task=1"), std::string::npos) << msg;
    }
  }
}

TEST(GpuSelection, NoVisibleGpuIsAUsageError) { EXPECT_THROW(gpu_for_worker(0, 1, 0), UsageError); }

}  // namespace
}  // namespace dptrain
