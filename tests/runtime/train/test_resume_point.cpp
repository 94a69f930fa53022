#include <gtest/gtest.h>

#include <string>

#include "runtime/core/errors.h"
#include "runtime/train/resume_point.h"
#include "runtime/train/run_report.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/runtime/train/train_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::TempDir;
using train_test::CapturedFile;

// sample_state()'s key: seed 7, global batch 64, 2560 samples, 40 steps per epoch.
const ResumeKey kKey{7, 64, 2560, 40};

// The message of the CheckpointError that check_resumable throws ("" if none).
std::string resume_error(const CheckpointState& state, const ResumeKey& key) {
  try {
    check_resumable("ckpt/a.h5", state, key);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

RunConfig config_with_dir(const std::string& dir) {
  RunConfig config;
  config.file = "run.yaml";
  config.name = "smoke";
  config.checkpoint.dir = dir;
  return config;
}

TEST(ResumePoint, ACheckpointOfThisRunFits) {
  EXPECT_EQ(resume_error(checkpoint_test::sample_state(2, 85), kKey), "");
}

TEST(ResumePoint, ADifferentSeedBatchDataOrEpochLengthIsRefusedWithTheFix) {
  const CheckpointState state = checkpoint_test::sample_state(2, 85);
  const std::string seed = resume_error(state, {8, 64, 2560, 40});
  EXPECT_NE(seed.find("ckpt/a.h5: was written with seed 7, but this run has 8"), std::string::npos) << seed;
  EXPECT_NE(seed.find("`dptrain inspect ckpt/a.h5` prints its config"), std::string::npos) << seed;
  EXPECT_NE(resume_error(state, {7, 32, 2560, 80}).find("train.batch_size 64"), std::string::npos);
  EXPECT_NE(resume_error(state, {7, 64, 2000, 40}).find("a training set of size 2560"), std::string::npos);
  EXPECT_NE(resume_error(state, {7, 64, 2560, 41}).find("steps per epoch (train.drop_last) 40"), std::string::npos);
}

TEST(ResumePoint, AStepBeyondItsEpochIsInconsistent) {
  CheckpointState state = checkpoint_test::sample_state(2, 85);
  state.step_in_epoch = 40;
  EXPECT_NE(resume_error(state, kKey).find("records step 40 of an epoch of 40 steps"), std::string::npos);
}

TEST(ResumePoint, AutoNeedsACheckpointFolder) {
  RunReport report(nullptr, nullptr, ProgressStyle::Off, 1.0);
  try {
    find_resume_point("auto", config_with_dir(""), report);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set checkpoint.dir=checkpoints/smoke"), std::string::npos) << e.what();
  }
}

TEST(ResumePoint, AutoInAnEmptyFolderStartsFromTheBeginning) {
  TempDir dir;
  CapturedFile log;
  RunReport report(log.file(), nullptr, ProgressStyle::Off, 1.0);
  const ResumeCheckpoint found = find_resume_point("auto", config_with_dir(dir.path()), report);
  EXPECT_FALSE(found.found());
  EXPECT_NE(log.text().find("no checkpoint in " + dir.path() + " yet: training from the beginning"),
            std::string::npos)
      << log.text();
}

TEST(ResumePoint, AutoTakesTheNewestThatVerifiesAndNamesTheOthers) {
  TempDir dir;
  save_checkpoint(dir.path(), checkpoint_test::sample_state(1, 40));
  const std::string newest = save_checkpoint(dir.path(), checkpoint_test::sample_state(2, 80));
  checkpoint_test::write_bytes(newest, "not a checkpoint");
  CapturedFile log;
  RunReport report(log.file(), nullptr, ProgressStyle::Off, 1.0);
  const ResumeCheckpoint found = find_resume_point("auto", config_with_dir(dir.path()), report);
  ASSERT_TRUE(found.found());
  EXPECT_EQ(found.state.global_step, 40u);
  EXPECT_NE(log.text().find("skipped checkpoint " + newest), std::string::npos) << log.text();
}

TEST(ResumePoint, AFileIsReadAsGiven) {
  TempDir dir;
  const std::string path = save_checkpoint(dir.path(), checkpoint_test::sample_state(3, 120));
  RunReport report(nullptr, nullptr, ProgressStyle::Off, 1.0);
  const ResumeCheckpoint found = find_resume_point(path, config_with_dir(""), report);
  EXPECT_EQ(found.path, path);
  EXPECT_EQ(found.state.epoch, 3u);
  EXPECT_THROW(find_resume_point(dir.file("missing.h5"), config_with_dir(""), report), CheckpointError);
}

}  // namespace
}  // namespace dptrain
