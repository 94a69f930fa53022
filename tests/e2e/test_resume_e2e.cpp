// Checkpoints through the dptrain binary, as a user or a batch system drives it: SIGTERM in the middle
// of an epoch saves and exits 0, --resume auto continues to the same parameters (also after a stop of
// an mpirun job by SIGUSR2 and a resume on another number of workers), eval reports a checkpoint's
// accuracy, and mistakes exit 1 without touching the checkpoints.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/background.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::Background;
using e2e::run_command;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
// Long enough epochs (about a second each) that a signal sent after the first lands inside the second.
const std::string kLongRun = " --set data.train_samples=100000 --set threads=1 --progress plain";
using test_util::final_parameters;
using test_util::kMpiEnv;
using test_util::read_file;
using test_util::TempDir;
using test_util::wait_for_checkpoint;

bool has_checkpoint_inside_an_epoch(const std::string& dir) {
  for (const CheckpointFile& f : list_checkpoints(dir)) {
    if (read_checkpoint(f.path, CheckpointContents::Header).step_in_epoch > 0) return true;
  }
  return false;
}

TEST(ResumeBinary, SigtermInsideAnEpochSavesExitsZeroAndResumesToTheSameParameters) {
  TempDir tmp;
  const auto reference = run_command(kBinary + " train " + kSmoke + kLongRun + " --set checkpoint.dir=" +
                                     tmp.file("reference"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  const std::string dir = tmp.file("stopped"), metrics = tmp.file("metrics.jsonl");
  // keep=10: the checkpoint written at the stop stays for the check below.
  const std::string train = kBinary + " train " + kSmoke + kLongRun + " --set checkpoint.dir=" + dir +
                            " --set checkpoint.keep=10 --metrics " + metrics;
  Background run(train, tmp.file("stopped.log"));
  ASSERT_TRUE(wait_for_checkpoint(dir, 1, 120)) << run.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the second epoch (about 1 s long)
  kill(run.pid(), SIGTERM);
  ASSERT_EQ(run.wait(60), 0) << run.output();
  EXPECT_NE(run.output().find("stopped by SIGTERM in epoch 2 after step "), std::string::npos) << run.output();
  EXPECT_TRUE(has_checkpoint_inside_an_epoch(dir));
  EXPECT_NE(read_file(metrics).find("\"event\": \"stop\""), std::string::npos);

  const auto resumed = run_command(train + " --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + dir + "/ckpt-e000001-"), std::string::npos) << resumed.output;
  EXPECT_NE(read_file(metrics).find("\"event\": \"end\""), std::string::npos);
  const std::vector<float> expected = final_parameters(tmp.file("reference"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(final_parameters(dir), expected) << "stopped and resumed run differs from the uninterrupted one";
}

TEST(ResumeBinary, MpirunJobStoppedBySigusr2ResumesOnThreeWorkers) {
  // 1 worker, 2 workers and 3 workers follow the same trajectory bit for bit with train.reproducible
  // (without it only to rounding, which over these 1500 steps can grow past any fixed tolerance).
  TempDir tmp;
  const std::string exact = kLongRun + " --set train.reproducible=true";
  const auto reference = run_command(kBinary + " train " + kSmoke + exact + " --set checkpoint.dir=" +
                                     tmp.file("reference"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  const std::string dir = tmp.file("stopped");
  const std::string train = " " + kBinary + " train " + kSmoke + exact + " --set checkpoint.dir=" + dir;
  // mpirun forwards SIGUSR2 to every rank (SIGTERM it follows with SIGKILL after a second).
  Background job(kMpiEnv + "mpirun --bind-to none -np 2" + train, tmp.file("mpirun.log"));
  ASSERT_TRUE(wait_for_checkpoint(dir, 1, 120)) << job.output();
  kill(job.pid(), SIGUSR2);
  ASSERT_EQ(job.wait(60), 0) << job.output();
  EXPECT_NE(job.output().find("stopped by SIGUSR2"), std::string::npos) << job.output();

  const auto resumed = run_command(kMpiEnv + "timeout 120 mpirun --oversubscribe --bind-to none -np 3" +
                                   train + " --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("saved by 2 worker(s), now 3"), std::string::npos) << resumed.output;
  const std::vector<float> expected = final_parameters(tmp.file("reference"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(final_parameters(dir), expected) << "stopped on 2 workers and resumed on 3 differs from 1 worker";
}

TEST(ResumeBinary, EvalReportsTheAccuracyOfACheckpoint) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  ASSERT_EQ(run_command(kBinary + " train " + kSmoke + " --progress off --set checkpoint.dir=" + dir).exit_code, 0);
  const std::string file = list_checkpoints(dir).at(0).path;
  for (const std::string& config : {kSmoke, std::string()}) {  // the config file, or the one stored in the file
    const auto eval = run_command(kBinary + " eval " + config + " --checkpoint " + file + " --json");
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    const size_t at = eval.output.find("\"test_accuracy\": ");
    ASSERT_NE(at, std::string::npos) << eval.output;
    EXPECT_GT(std::stod(eval.output.substr(at + 17)), 0.8) << eval.output;  // four classes: chance is 0.25
    EXPECT_NE(eval.output.find("\"step\": 96"), std::string::npos) << eval.output;
  }
  fs::resize_file(file, fs::file_size(file) - 100);
  const auto damaged = run_command(kBinary + " eval --checkpoint " + file);
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_NE(damaged.output.find(file), std::string::npos) << damaged.output;
}

TEST(ResumeBinary, MistakesExitOneAndLeaveTheCheckpointsAlone) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  const std::string train = kBinary + " train " + kSmoke + " --progress off --set checkpoint.dir=" + dir;
  ASSERT_EQ(run_command(train).exit_code, 0);
  const std::string newest = list_checkpoints(dir).at(0).path;
  const std::string before = read_file(newest);

  const auto again = run_command(train);  // forgot --resume
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("--resume auto"), std::string::npos) << again.output;

  const auto other_seed = run_command(train + " --set seed=99 --resume auto");
  EXPECT_EQ(other_seed.exit_code, 1);
  EXPECT_NE(other_seed.output.find("seed 7, but this run has 99"), std::string::npos) << other_seed.output;

  const auto missing = run_command(kBinary + " train " + kSmoke + " --resume " + tmp.file("nope.h5"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find(tmp.file("nope.h5")), std::string::npos) << missing.output;

  const auto no_dir = run_command(kBinary + " train " + kSmoke + " --resume auto");
  EXPECT_EQ(no_dir.exit_code, 1);
  EXPECT_NE(no_dir.output.find("checkpoint.dir"), std::string::npos) << no_dir.output;

  EXPECT_EQ(list_checkpoints(dir).size(), 3u);
  EXPECT_EQ(read_file(newest), before);
}

}  // namespace
}  // namespace dptrain
