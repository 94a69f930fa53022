// Training with checkpoints through the library: saving as configured, stopping on request, resuming
// at epoch boundaries and inside an epoch with the same result as an uninterrupted run, and refusing
// checkpoints that do not belong to the run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "runtime/train/trainer.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

using test_util::TempDir;

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.num_elements()); }

// The parameters and optimizer state at the end of a run, and how it went.
struct Outcome {
  std::vector<float> params;
  std::vector<std::vector<float>> optimizer;
  uint64_t global_step = 0;
  size_t epochs_trained = 0;
  int stopped_by = 0;
  TrainingPosition position;
};

// One process of a run: optionally resuming, optionally asked to stop when it reaches (epoch, step).
struct RunPlan {
  std::vector<std::string> overrides;
  std::string resume;           // "" none, "auto" or a file
  long stop_epoch = -1;         // ask to stop while training this epoch (0-based) ...
  long stop_step = -1;          // ... at this step of it (the step still completes)
};

Outcome train(const RunPlan& plan) {
  std::vector<std::string> overrides = {"threads=1", "train.epochs=3"};
  overrides.insert(overrides.end(), plan.overrides.begin(), plan.overrides.end());
  RunConfig config = RunConfig::load(kSmoke, overrides);
  SingleProcessCommunicator comm;
  std::atomic<int> stop{0};
  TrainerOptions options;
  options.log = nullptr;
  options.stop_signal = &stop;
  options.on_batch = [&](size_t epoch, size_t step, const std::vector<uint64_t>&) {
    if (static_cast<long>(epoch) == plan.stop_epoch && static_cast<long>(step) == plan.stop_step) stop = SIGTERM;
  };
  Trainer trainer(config, comm, options);
  if (!plan.resume.empty()) trainer.resume(plan.resume);
  Outcome out;
  out.epochs_trained = trainer.run().size();
  out.params = values(trainer.model().parameters());
  const CheckpointState state = trainer.checkpoint_state();
  for (const CheckpointOptimizerState& s : state.optimizer_state) {
    std::vector<float> flat;
    for (const CheckpointTensor& t : s.tensors) flat.insert(flat.end(), t.values.begin(), t.values.end());
    out.optimizer.push_back(flat);
  }
  out.global_step = trainer.global_step();
  out.stopped_by = trainer.stopped_by();
  out.position = trainer.position();
  return out;
}

void expect_same(const Outcome& a, const Outcome& b) {
  EXPECT_EQ(a.global_step, b.global_step);
  ASSERT_EQ(a.params.size(), b.params.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.params.size(); ++i) differing += a.params[i] != b.params[i];
  EXPECT_EQ(differing, 0u) << "parameters differ from the uninterrupted run";
  EXPECT_EQ(a.optimizer, b.optimizer) << "optimizer state differs from the uninterrupted run";
}

TEST(Resume, RunWritesCheckpointsAsConfiguredAndKeepsTheNewest) {
  TempDir dir;
  const Outcome out =
      train({{"checkpoint.dir=" + dir.path(), "train.epochs=5", "checkpoint.every_epochs=2", "checkpoint.keep=2"}});
  EXPECT_EQ(out.epochs_trained, 5u);
  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  // Saved after epochs 2, 4 and 5 (the last always); only the newest two kept.
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].epoch, 5u);
  EXPECT_EQ(files[1].epoch, 4u);
  const CheckpointState state = read_checkpoint(files[0].path);
  EXPECT_EQ(state.global_step, out.global_step);
  EXPECT_EQ(state.step_in_epoch, 0u);
  EXPECT_EQ(state.world_size, 1u);
  EXPECT_NE(state.config_text.find("synthetic"), std::string::npos);
  EXPECT_NE(state.metrics_json.find("\"test_accuracy\""), std::string::npos);
}

TEST(Resume, FromAnEpochBoundaryIsBitExact) {
  const Outcome reference = train({});
  TempDir dir;
  const Outcome first = train({{"checkpoint.dir=" + dir.path(), "train.epochs=1"}});
  EXPECT_EQ(first.epochs_trained, 1u);
  // The same run, now for its full length, continues after epoch 1.
  const Outcome resumed = train({{"checkpoint.dir=" + dir.path()}, "auto"});
  EXPECT_EQ(resumed.epochs_trained, 2u);
  expect_same(resumed, reference);
}

TEST(Resume, StopInsideAnEpochSavesThePositionAndResumingIsBitExact) {
  const Outcome reference = train({});
  TempDir dir;
  const Outcome stopped = train({{"checkpoint.dir=" + dir.path()}, "", 1, 9});
  EXPECT_EQ(stopped.stopped_by, SIGTERM);
  EXPECT_EQ(stopped.epochs_trained, 2u);  // the first, and the part of the second
  EXPECT_EQ(stopped.position.epoch, 1u);
  EXPECT_EQ(stopped.position.step_in_epoch, 10u);
  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_FALSE(files.empty());
  const CheckpointState saved = read_checkpoint(files[0].path);
  EXPECT_EQ(saved.epoch, 1u);
  EXPECT_EQ(saved.step_in_epoch, 10u);
  EXPECT_EQ(saved.global_step, 32u + 10u);

  const Outcome resumed = train({{"checkpoint.dir=" + dir.path()}, "auto"});
  EXPECT_EQ(resumed.stopped_by, 0);
  expect_same(resumed, reference);
}

TEST(Resume, AdamStateAndStepCountSurviveAStop) {
  const std::vector<std::string> adam = {"optimizer={type: adam, lr: 0.002}",
                                         "lr_schedule={type: cosine, warmup_epochs: 0.5}"};
  const Outcome reference = train({adam});
  TempDir dir;
  std::vector<std::string> with_dir = adam;
  with_dir.push_back("checkpoint.dir=" + dir.path());
  train({with_dir, "", 0, 20});
  const Outcome resumed = train({with_dir, "auto"});
  ASSERT_EQ(resumed.optimizer.size(), 2u);  // exp_avg, exp_avg_sq
  expect_same(resumed, reference);
}

TEST(Resume, StopAtTheLastStepOfAnEpochFinishesTheEpochFirst) {
  TempDir dir;
  const Outcome stopped = train({{"checkpoint.dir=" + dir.path()}, "", 0, 31});
  EXPECT_EQ(stopped.stopped_by, SIGTERM);
  EXPECT_EQ(stopped.position.epoch, 1u);
  EXPECT_EQ(stopped.position.step_in_epoch, 0u);
  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_EQ(files.size(), 1u);  // the epoch's own checkpoint, not written twice
  EXPECT_EQ(read_checkpoint(files[0].path, CheckpointContents::Header).step_in_epoch, 0u);
}

TEST(Resume, StopWithoutCheckpointFolderSavesNothing) {
  const Outcome stopped = train({{}, "", 0, 3});
  EXPECT_EQ(stopped.stopped_by, SIGTERM);
  EXPECT_EQ(stopped.global_step, 4u);
}

TEST(Resume, TimedCheckpointsInsideAnEpoch) {
  TempDir dir;
  // 0.00001 minutes: a save after nearly every step; keep them all to count them.
  train({{"checkpoint.dir=" + dir.path(), "train.epochs=1", "checkpoint.every_minutes=0.00001",
          "checkpoint.keep=100"}});
  size_t inside = 0;
  for (const CheckpointFile& f : list_checkpoints(dir.path())) {
    inside += read_checkpoint(f.path, CheckpointContents::Header).step_in_epoch > 0;
  }
  EXPECT_GT(inside, 0u);
}

TEST(Resume, AutoWithoutCheckpointsStartsFromTheBeginning) {
  TempDir dir;
  const Outcome fresh = train({{"checkpoint.dir=" + dir.file("none-yet"), "train.epochs=1"}, "auto"});
  EXPECT_EQ(fresh.epochs_trained, 1u);
  EXPECT_EQ(list_checkpoints(dir.file("none-yet")).size(), 1u);
}

TEST(Resume, AutoSkipsADamagedNewestCheckpoint) {
  TempDir dir;
  train({{"checkpoint.dir=" + dir.path(), "train.epochs=2"}});
  std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_EQ(files.size(), 2u);
  fs::resize_file(files[0].path, fs::file_size(files[0].path) / 2);  // the newest, truncated
  const Outcome resumed = train({{"checkpoint.dir=" + dir.path(), "train.epochs=2"}, "auto"});
  EXPECT_EQ(resumed.epochs_trained, 1u);  // epoch 2 again, from the checkpoint of epoch 1
  EXPECT_EQ(resumed.global_step, 64u);
}

TEST(Resume, AutoRefusesWhenNoCheckpointVerifies) {
  TempDir dir;
  train({{"checkpoint.dir=" + dir.path(), "train.epochs=1"}});
  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_EQ(files.size(), 1u);
  std::ofstream(files[0].path, std::ios::trunc) << "not a checkpoint";
  try {
    train({{"checkpoint.dir=" + dir.path()}, "auto"});
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("none of its 1 checkpoint(s) verifies"), std::string::npos) << e.what();
  }
}

TEST(Resume, FreshRunRefusesAFolderWithAnEarlierRunsCheckpoints) {
  TempDir dir;
  train({{"checkpoint.dir=" + dir.path(), "train.epochs=1"}});
  try {
    train({{"checkpoint.dir=" + dir.path(), "train.epochs=1"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--resume auto"), std::string::npos) << e.what();
  }
  EXPECT_EQ(list_checkpoints(dir.path()).size(), 1u);  // untouched
}

TEST(Resume, CheckpointOfAnotherRunIsRefusedNamingWhatDiffers) {
  TempDir dir;
  train({{"checkpoint.dir=" + dir.path(), "train.epochs=1"}});
  const std::string file = list_checkpoints(dir.path()).at(0).path;
  struct Case {
    std::string override_text;
    std::string message;
  };
  for (const Case& c : {Case{"seed=8", "seed 7, but this run has 8"},
                        Case{"train.batch_size=32", "train.batch_size 64, but this run has 32"},
                        Case{"data.train_samples=1024", "training set of size 2048, but this run has 1024"},
                        Case{"model.4.units=16", "parameter"},
                        Case{"optimizer={type: adam, lr: 0.001}", "optimizer 'sgd'"}}) {
    try {
      train({{c.override_text}, file});
      ADD_FAILURE() << c.override_text << ": expected CheckpointError";
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.override_text << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

TEST(Resume, AutoWithoutCheckpointFolderIsAConfigError) {
  EXPECT_THROW(train({{}, "auto"}), ConfigError);
}

TEST(Resume, LoadParametersForEvaluation) {
  TempDir dir;
  const Outcome trained = train({{"checkpoint.dir=" + dir.path(), "train.epochs=2"}});
  RunConfig config = RunConfig::load(kSmoke, {"threads=1"});
  SingleProcessCommunicator comm;
  TrainerOptions options;
  options.log = nullptr;
  Trainer trainer(config, comm, options);
  const EvalResult untrained = trainer.evaluate();
  const TrainingPosition at = trainer.load_parameters(list_checkpoints(dir.path()).at(0).path);
  EXPECT_EQ(at.epoch, 2u);
  EXPECT_EQ(at.global_step, 64u);
  EXPECT_EQ(values(trainer.model().parameters()), trained.params);
  EXPECT_GT(trainer.evaluate().accuracy, untrained.accuracy + 0.2);
}

}  // namespace
}  // namespace dptrain
