// Pruning during training as a user meets it: the epoch line and metrics report the sparsity, a run
// resumed from a checkpoint in the middle of the schedule ends exactly where the uninterrupted run
// does (masks included), and 1 and 2 workers prune the same weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using e2e::run_command;
using test_util::kMpiEnv;
using test_util::TempDir;

const std::string kTrain = std::string(DPTRAIN_BINARY) + " train " + DPTRAIN_SOURCE_DIR +
                           "/configs/synthetic_smoke.yaml --progress off --set device=cpu --set threads=1" +
                           " --set 'prune={sparsity: 0.7, end_epoch: 2, every_steps: 4}' --set checkpoint.keep=10";

// The newest checkpoint of `dir`, whole.
CheckpointState newest(const std::string& dir) {
  const std::vector<CheckpointFile> files = list_checkpoints(dir);
  EXPECT_FALSE(files.empty()) << "no checkpoint in " << dir;
  return files.empty() ? CheckpointState{} : read_checkpoint(files[0].path);
}

void expect_same_tensors(const std::vector<CheckpointTensor>& a, const std::vector<CheckpointTensor>& b,
                         const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name) << what;
    EXPECT_EQ(a[i].values, b[i].values) << what << " " << a[i].name << " differs";
  }
}

TEST(PruneE2E, ReportsSparsityAndResumesExactlyFromTheMiddleOfTheSchedule) {
  TempDir tmp;
  const std::string metrics = tmp.file("metrics.jsonl");
  const auto full = run_command(kTrain + " --set checkpoint.dir=" + tmp.file("full") + " --metrics " + metrics);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("prune: 3 weight tensors"), std::string::npos) << full.output;
  EXPECT_NE(full.output.find("  pruned 70.0% of the pruned layers' weights: 0.conv2d.weight 69.4%"), std::string::npos)
      << full.output;
  EXPECT_NE(test_util::read_file(metrics).find("\"sparsity.4.dense.weight\": 0.69"), std::string::npos);
  const CheckpointState end = newest(tmp.file("full"));
  ASSERT_EQ(end.masks.size(), 3u);

  // Resumed from the checkpoint after epoch 1, half way through the schedule.
  std::string after_one;
  for (const CheckpointFile& f : list_checkpoints(tmp.file("full"))) {
    if (f.path.find("ckpt-e000001-") != std::string::npos) after_one = f.path;
  }
  ASSERT_FALSE(after_one.empty());
  const CheckpointState middle = read_checkpoint(after_one);
  ASSERT_EQ(middle.masks.size(), 3u);
  const auto resumed = run_command(kTrain + " --set checkpoint.dir=" + tmp.file("resumed") + " --resume " + after_one);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const CheckpointState again = newest(tmp.file("resumed"));
  expect_same_tensors(again.parameters, end.parameters, "resumed parameters");
  expect_same_tensors(again.masks, end.masks, "resumed masks");
}

TEST(PruneE2E, OneAndTwoWorkersPruneTheSameWeights) {
  TempDir tmp;
  const std::string exact = " --set train.reproducible=true --set train.epochs=2 --set checkpoint.dir=";
  const auto one = run_command(kTrain + exact + tmp.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = run_command(kMpiEnv + "timeout 120 mpirun --oversubscribe --bind-to none -np 2 " + kTrain + exact +
                               tmp.file("two"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const CheckpointState a = newest(tmp.file("one")), b = newest(tmp.file("two"));
  expect_same_tensors(a.masks, b.masks, "masks");
  expect_same_tensors(a.parameters, b.parameters, "parameters");
}

}  // namespace
}  // namespace dptrain
