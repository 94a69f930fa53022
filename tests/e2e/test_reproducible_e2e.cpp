// Bit-exact training (train.reproducible) through the dptrain binary: the whole checkpoint state
// (parameters, optimizer state, batch-norm statistics) is bit-identical for 1 to 4 workers and 1 or 2
// threads, after a resume on another number of workers and after an elastic 2 -> 3 -> 2 run, for the
// demo CNN and ResNet-20; without it 1 and 2 workers differ; a layer that cannot be exact is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/elastic_run.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::CommandResult;
using e2e::ElasticRun;
using e2e::run_command;
using test_util::BitDifference;
using test_util::newest_checkpoint;
using test_util::TempDir;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kConfigs = std::string(DPTRAIN_SOURCE_DIR) + "/configs/";
// The demo CNN on Fashion-MNIST in global batches of 32 (4 micro-shards of 8 images): 200 steps in
// 6400 images, a few seconds a run.
const std::string kDemo = kConfigs +
                          "fashion_mnist.yaml --set train.micro_shard=8 --set train.batch_size=32 "
                          "--set data.test_samples=500";
const std::string kExact = " --set train.reproducible=true";
const std::string kApproximate = " --set train.reproducible=false";

// How many workers and threads per worker a run has.
struct Workers {
  size_t workers;
  size_t threads;
  std::string name() const { return std::to_string(workers) + "x" + std::to_string(threads); }
};

// `dptrain train CONFIG_AND_OPTIONS` on the CPU with `w` workers (under mpirun when more than one),
// its checkpoints in `dir`.
CommandResult train(const std::string& config_and_options, Workers w, const std::string& dir) {
  const std::string launch =
      w.workers == 1 ? "timeout 120 " : test_util::kMpirun + "-np " + std::to_string(w.workers) + " ";
  return run_command(launch + kBinary + " train " + config_and_options + " --set device=cpu --set threads=" +
                     std::to_string(w.threads) + " --progress off --set checkpoint.dir=" + dir);
}

// Compares the newest checkpoints of `reference` and `other` bit for bit and prints the figures of
// the pair `what` (the run's log keeps them).
BitDifference compare_runs(const std::string& what, const std::string& reference, const std::string& other) {
  const CheckpointState a = newest_checkpoint(reference), b = newest_checkpoint(other);
  const BitDifference d = test_util::bit_difference(a, b);
  std::cout << "[bit-exact] " << what << ": step " << b.global_step << ", " << d.values
            << " values (parameters, optimizer state, buffers), " << d.differing << " differ, max |difference| "
            << d.max_abs << (d.mismatch.empty() ? "" : ", mismatch: " + d.mismatch) << "\n";
  for (const std::string& t : d.tensors) std::cout << "[bit-exact]   differs: " << t << "\n";
  return d;
}

// The failure message of a comparison that should have been bit-identical.
std::string describe(const BitDifference& d) {
  std::string text = std::to_string(d.differing) + " of " + std::to_string(d.values) + " values differ " + d.mismatch;
  for (const std::string& t : d.tensors) text += "\n  " + t;
  return text;
}

TEST(ReproducibleE2E, DemoCnnIsBitIdenticalOnOneToFourWorkersAndTwoThreads) {
  TempDir tmp("dptrain_reproducible");
  const std::string options = kDemo + kExact + " --set data.train_samples=6400 --set train.epochs=1";
  const Workers reference{1, 1};
  const CommandResult first = train(options, reference, tmp.file(reference.name()));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("reproducible: bit-exact sums"), std::string::npos) << first.output;
  ASSERT_EQ(newest_checkpoint(tmp.file(reference.name())).global_step, 200u);
  for (const Workers w : {Workers{2, 1}, Workers{3, 1}, Workers{4, 1}, Workers{1, 2}}) {
    const CommandResult r = train(options, w, tmp.file(w.name()));
    ASSERT_EQ(r.exit_code, 0) << w.name() << "\n" << r.output;
    const BitDifference d = compare_runs("demo CNN " + w.name() + " vs 1x1", tmp.file("1x1"), tmp.file(w.name()));
    EXPECT_TRUE(d.identical()) << w.name() << ": " << describe(d);
    EXPECT_EQ(d.max_abs, 0.0);
  }
}

// The control: the same comparison without train.reproducible finds the rounding differences that
// the check above would report. They are there after the first step; 20 steps keep it short.
TEST(ReproducibleE2E, WithoutItOneAndTwoWorkersAreNotBitIdentical) {
  TempDir tmp("dptrain_reproducible");
  const std::string options = kDemo + kApproximate + " --set data.train_samples=640 --set train.epochs=1";
  for (const Workers w : {Workers{1, 1}, Workers{2, 1}}) {
    const CommandResult r = train(options, w, tmp.file(w.name()));
    ASSERT_EQ(r.exit_code, 0) << w.name() << "\n" << r.output;
    EXPECT_EQ(r.output.find("reproducible: bit-exact sums"), std::string::npos) << r.output;
  }
  const BitDifference d = compare_runs("demo CNN, reproducible: false, 2x1 vs 1x1", tmp.file("1x1"), tmp.file("2x1"));
  EXPECT_TRUE(d.mismatch.empty()) << d.mismatch;
  EXPECT_GT(d.differing, 0u);
  EXPECT_GT(d.max_abs, 0.0);
}

// 2 workers train epoch 1 of 2 and checkpoint it (the epoch-2 checkpoints are removed, as if the job
// had stopped there); 3 workers resume and finish epoch 2.
TEST(ReproducibleE2E, ResumeOnThreeWorkersOfATwoWorkerCheckpointIsBitIdentical) {
  TempDir tmp("dptrain_reproducible");
  const std::string options = kDemo + kExact + " --set data.train_samples=1600 --set train.epochs=2";
  const CommandResult reference = train(options, Workers{1, 1}, tmp.file("reference"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const std::string dir = tmp.file("resumed");
  const CommandResult two = train(options, Workers{2, 1}, dir);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_TRUE(compare_runs("demo CNN 2 epochs 2x1 vs 1x1", tmp.file("reference"), dir).identical());
  for (const CheckpointFile& f : list_checkpoints(dir)) {
    if (f.epoch >= 2) fs::remove(f.path);
  }
  ASSERT_EQ(newest_checkpoint(dir).global_step, 50u);

  const CommandResult three = train(options + " --resume auto", Workers{3, 1}, dir);
  ASSERT_EQ(three.exit_code, 0) << three.output;
  EXPECT_NE(three.output.find("saved by 2 worker(s), now 3"), std::string::npos) << three.output;
  const BitDifference d =
      compare_runs("demo CNN epoch 1 on 2x1, epoch 2 resumed on 3x1, vs 1x1", tmp.file("reference"), dir);
  EXPECT_EQ(newest_checkpoint(dir).global_step, 100u);
  EXPECT_TRUE(d.identical()) << describe(d);
  EXPECT_EQ(d.max_abs, 0.0);
}

// 2 workers, a third joins after an epoch and leaves after another: the same bits as 1 worker.
TEST(ReproducibleE2E, ElasticTwoToThreeToTwoIsBitIdenticalToAFixedOneWorkerRun) {
  const std::string train_keys = "reproducible: true, micro_shard: 5";  // 5 micro-shards per batch of 25
  ElasticRun fixed("reproducible-fixed", "{enabled: false}", 48000, 25, 4, train_keys);
  auto reference = fixed.start_job(1);
  ASSERT_EQ(reference->wait(120), 0) << reference->output();

  ElasticRun run("reproducible-elastic", "{enabled: true, max_workers: 4}", 48000, 25, 4, train_keys);
  const std::string out = run.two_three_two();
  EXPECT_NE(out.find("done: 4 epochs"), std::string::npos) << out;

  const BitDifference d =
      compare_runs("small CNN elastic 2 -> 3 -> 2 workers vs fixed 1x1", fixed.run_dir(), run.run_dir());
  EXPECT_TRUE(d.identical()) << describe(d);
  EXPECT_EQ(d.max_abs, 0.0);
}

// Batch norm (its statistics over the global batch, its running statistics in the checkpoint) and
// residual adds: 16 steps of 32 images.
TEST(ReproducibleE2E, ResNet20IsBitIdenticalOnOneTwoAndThreeWorkers) {
  TempDir tmp("dptrain_reproducible");
  const std::string options = kConfigs + "resnet20_fashion_mnist.yaml" + kExact +
                              " --set train.micro_shard=8 --set train.batch_size=32 --set data.train_samples=512 "
                              "--set data.test_samples=100 --set train.epochs=1";
  for (const Workers w : {Workers{1, 1}, Workers{2, 1}, Workers{3, 1}}) {
    const CommandResult r = train(options, w, tmp.file(w.name()));
    ASSERT_EQ(r.exit_code, 0) << w.name() << "\n" << r.output;
  }
  const CheckpointState reference = newest_checkpoint(tmp.file("1x1"));
  EXPECT_EQ(reference.global_step, 16u);
  EXPECT_FALSE(reference.buffers.empty()) << "batch norm's running statistics are compared too";
  for (const std::string other : {"2x1", "3x1"}) {
    const BitDifference d = compare_runs("ResNet-20 " + other + " vs 1x1", tmp.file("1x1"), tmp.file(other));
    EXPECT_TRUE(d.identical()) << other << ": " << describe(d);
    EXPECT_EQ(d.max_abs, 0.0);
  }
}

TEST(ReproducibleE2E, BatchNormWithPerWorkerStatisticsIsAConfigError) {
  TempDir tmp("dptrain_reproducible");
  const std::string config = tmp.file("per_worker.yaml");
  std::ofstream(config) << R"(name: per_worker
seed: 7
threads: 1
device: cpu
data: {type: synthetic, train_samples: 64, test_samples: 16, shape: [1, 8, 8], classes: 3}
model:
  - {type: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {type: batchnorm2d, name: bn, stats: per_worker}
  - {type: relu}
  - {type: flatten}
  - {type: dense, units: 3}
  - {type: softmax_cross_entropy}
optimizer: {type: sgd, lr: 0.1}
train: {batch_size: 16, epochs: 1, reproducible: true}
)";
  const CommandResult r = run_command("timeout 60 " + kBinary + " train " + config + " --progress off");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(config), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train.reproducible"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("layer bn"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stats: global"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
