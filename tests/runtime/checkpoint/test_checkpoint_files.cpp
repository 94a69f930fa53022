// Checkpoint files: choosing the one to resume from, pruning, and model and optimizer state.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>
#include <unistd.h>
#include <utime.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/config_map.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/train/model.h"
#include "runtime/train/model_state.h"
#include "runtime/train/optimizer.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

using test_util::TempDir;
using namespace checkpoint_test;

// ---- Choosing and pruning ----

TEST(CheckpointFiles, ListSortsByPositionNewestFirstAndIgnoresOtherFiles) {
  TempDir dir;
  save_checkpoint(dir.path(), sample_state(1, 10));
  save_checkpoint(dir.path(), sample_state(2, 20));
  save_checkpoint(dir.path(), sample_state(10, 100));
  fs::copy_file(dir.file("ckpt-e000002-s00000020.h5"), dir.file("ckpt-e2-s25.h5"));  // narrow digits
  write_bytes(dir.file("notes.txt"), "x");
  write_bytes(dir.file(".ckpt-e000011-s00000110.h5.tmp-123"), "partial");
  write_bytes(dir.file("ckpt-e000001-s00000010.h5.bak"), "x");
  fs::create_directory(dir.file("ckpt-e000099-s00000999.h5"));

  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].path, dir.file("ckpt-e000010-s00000100.h5"));
  EXPECT_EQ(files[0].epoch, 10u);
  EXPECT_EQ(files[0].global_step, 100u);
  EXPECT_EQ(files[1].path, dir.file("ckpt-e2-s25.h5"));
  EXPECT_EQ(files[2].path, dir.file("ckpt-e000002-s00000020.h5"));
  EXPECT_EQ(files[3].path, dir.file("ckpt-e000001-s00000010.h5"));
  EXPECT_TRUE(list_checkpoints(dir.file("not-there")).empty());
  EXPECT_FALSE(checkpoint_error([&] { list_checkpoints(dir.file("notes.txt")); }).empty());
}

TEST(CheckpointFiles, ResumeSkipsADamagedNewestCheckpoint) {
  TempDir dir;
  save_checkpoint(dir.path(), sample_state(1, 10));
  save_checkpoint(dir.path(), sample_state(2, 20));
  const std::string newest = save_checkpoint(dir.path(), sample_state(3, 30));
  const std::string bytes = read_bytes(newest);
  write_bytes(newest, bytes.substr(0, bytes.size() / 2));

  const ResumeCheckpoint resume = find_resume_checkpoint(dir.path());
  ASSERT_TRUE(resume.found());
  EXPECT_EQ(resume.path, dir.file("ckpt-e000002-s00000020.h5"));
  EXPECT_EQ(resume.state.global_step, 20u);
  expect_same_tensors(resume.state.parameters, sample_state(2, 20).parameters);
  ASSERT_EQ(resume.skipped.size(), 1u);
  EXPECT_EQ(resume.skipped[0].path, newest);
  EXPECT_NE(resume.skipped[0].reason.find("truncated"), std::string::npos) << resume.skipped[0].reason;
  EXPECT_EQ(resume.skipped[0].reason.find(newest), std::string::npos) << "the reason repeats the file name";
}

TEST(CheckpointFiles, ResumeFindsNothingWhenNothingVerifies) {
  TempDir dir;
  EXPECT_FALSE(find_resume_checkpoint(dir.path()).found());
  EXPECT_FALSE(find_resume_checkpoint(dir.file("absent")).found());
  write_bytes(dir.file("ckpt-e000001-s00000001.h5"), "");
  write_bytes(dir.file("ckpt-e000002-s00000002.h5"), "garbage");
  const ResumeCheckpoint resume = find_resume_checkpoint(dir.path());
  EXPECT_FALSE(resume.found());
  ASSERT_EQ(resume.skipped.size(), 2u);
  EXPECT_EQ(resume.skipped[0].path, dir.file("ckpt-e000002-s00000002.h5"));
}

TEST(CheckpointFiles, PruneKeepsTheNewest) {
  TempDir dir;
  for (uint64_t step = 1; step <= 5; ++step) save_checkpoint(dir.path(), sample_state(step, step * 10));
  const PruneResult result = prune_checkpoints(dir.path(), 2);
  EXPECT_EQ(result.removed.size(), 3u);
  const std::vector<CheckpointFile> left = list_checkpoints(dir.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].global_step, 50u);
  EXPECT_EQ(left[1].global_step, 40u);
  EXPECT_TRUE(prune_checkpoints(dir.path(), 2).removed.empty());
  EXPECT_FALSE(checkpoint_error([&] { prune_checkpoints(dir.path(), 0); }).empty());
}

TEST(CheckpointFiles, PruneNeverDeletesTheNewestValidCheckpoint) {
  TempDir dir;
  for (uint64_t step = 1; step <= 4; ++step) save_checkpoint(dir.path(), sample_state(step, step * 10));
  write_bytes(dir.file("ckpt-e000004-s00000040.h5"), "damaged");
  write_bytes(dir.file("ckpt-e000003-s00000030.h5"), "damaged");
  prune_checkpoints(dir.path(), 1);
  const std::vector<CheckpointFile> left = list_checkpoints(dir.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].global_step, 40u);  // the newest, kept though damaged
  EXPECT_EQ(left[1].global_step, 20u);  // the newest that verifies
  EXPECT_EQ(find_resume_checkpoint(dir.path()).path, dir.file("ckpt-e000002-s00000020.h5"));
}

TEST(CheckpointFiles, PruneRemovesOnlyStaleTemporaryFilesOfOtherProcesses) {
  TempDir dir;
  const std::string stale = dir.file(".ckpt-e000001-s00000001.h5.tmp-999999");
  const std::string fresh = dir.file(".ckpt-e000001-s00000002.h5.tmp-999998");
  const std::string ours = dir.file(".ckpt-e000001-s00000003.h5.tmp-" + std::to_string(::getpid()));
  const std::string other_tool = dir.file(".data.h5.tmp-77");
  const std::string notes = dir.file("old-notes.tmp-5");
  for (const std::string& path : {stale, fresh, ours, other_tool, notes}) write_bytes(path, "partial");
  const time_t long_ago = std::time(nullptr) - 7200;
  const struct utimbuf times = {long_ago, long_ago};
  for (const std::string& path : {stale, ours, other_tool, notes}) ASSERT_EQ(::utime(path.c_str(), &times), 0);
  save_checkpoint(dir.path(), sample_state(1, 1));

  const PruneResult result = prune_checkpoints(dir.path(), 1);
  EXPECT_EQ(result.removed_temp_files, std::vector<std::string>{stale});
  EXPECT_FALSE(fs::exists(stale));
  for (const std::string& path : {fresh, ours, other_tool, notes}) EXPECT_TRUE(fs::exists(path)) << path;
  EXPECT_EQ(list_checkpoints(dir.path()).size(), 1u);
}

// ---- Model and optimizer state ----

// Two parameters laid out with padding, as Model lays them out.
std::vector<ParamEntry> padded_entries() {
  return {{0, "0.dense.weight", "dense", "weight", {3, 5}, 0}, {0, "0.dense.bias", "dense", "bias", {3}, 16}};
}

TEST(CheckpointModel, FlatBuffersRoundTripAndKeepPadding) {
  Tensor flat({32});
  for (size_t i = 0; i < 32; ++i) flat.data()[i] = static_cast<float>(i) + 0.5f;
  const std::vector<CheckpointTensor> tensors = tensors_from_flat(padded_entries(), flat);
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].values.size(), 15u);
  EXPECT_EQ(tensors[1].values, (std::vector<float>{16.5f, 17.5f, 18.5f}));

  Tensor restored({32});
  restored.fill(-1.0f);
  std::vector<CheckpointTensor> reversed = {tensors[1], tensors[0]};  // matched by name, not position
  tensors_to_flat(reversed, padded_entries(), restored, "x.h5");
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ(restored.data()[i], flat.data()[i]);
  EXPECT_EQ(restored.data()[15], -1.0f);  // padding untouched
  for (size_t i = 16; i < 19; ++i) EXPECT_EQ(restored.data()[i], flat.data()[i]);
  EXPECT_THROW(tensors_from_flat(padded_entries(), Tensor({18})), ShapeError);
}

TEST(CheckpointModel, ParametersOfAnotherModelAreRefusedBeforeAnythingIsCopied) {
  Tensor flat({32});
  flat.fill(2.0f);
  std::vector<CheckpointTensor> tensors = tensors_from_flat(padded_entries(), flat);
  Tensor target({32});
  target.fill(-1.0f);

  std::vector<CheckpointTensor> wrong_shape = tensors;
  wrong_shape[1].shape = {1, 3};
  std::string message = checkpoint_error([&] { tensors_to_flat(wrong_shape, padded_entries(), target, "run.h5"); });
  EXPECT_NE(message.find("run.h5: parameter '0.dense.bias' has shape (1, 3), but the model's is (3)"),
            std::string::npos)
      << message;
  EXPECT_EQ(target.data()[0], -1.0f);

  std::vector<CheckpointTensor> renamed = tensors;
  renamed[0].name = "0.conv2d.weight";
  message = checkpoint_error([&] { tensors_to_flat(renamed, padded_entries(), target, "run.h5"); });
  EXPECT_NE(message.find("has no parameter '0.dense.weight'"), std::string::npos) << message;

  std::vector<CheckpointTensor> extra = tensors;
  extra.push_back({"9.dense.bias", {1}, {0.0f}});
  message = checkpoint_error([&] { tensors_to_flat(extra, padded_entries(), target, "run.h5"); });
  EXPECT_NE(message.find("'9.dense.bias', which the model lacks"), std::string::npos) << message;
}

std::unique_ptr<Optimizer> build_optimizer(const std::string& body, size_t num_parameters) {
  ConfigMap root = ConfigMap::parse("optimizer:\n" + body, "run.yaml");
  ConfigMap config = root.get_map("optimizer");
  static CpuBackend cpu;
  auto optimizer = make_optimizer(config, padded_entries(), num_parameters, cpu);
  config.finish();
  return optimizer;
}

TEST(CheckpointModel, OptimizerStateSurvivesACheckpointAndContinuesIdentically) {
  TempDir dir;
  const std::vector<ParamEntry> entries = padded_entries();
  auto original = build_optimizer("  type: adam\n  lr: 0.01\n", 32);
  Tensor params({32}), grads({32});
  for (size_t i = 0; i < 32; ++i) params.data()[i] = 0.1f * static_cast<float>(i);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < 32; ++i) grads.data()[i] = std::sin(0.3f * static_cast<float>(i) + step);
    original->step(params, grads, 0.01f);
  }
  CheckpointState state;
  state.parameters = tensors_from_flat(entries, params);
  capture_optimizer(*original, entries, state);
  EXPECT_EQ(state.optimizer_name, "adam");
  EXPECT_EQ(state.optimizer_steps, 3u);
  ASSERT_EQ(state.optimizer_state.size(), 2u);
  const std::string path = dir.file("opt.h5");
  write_checkpoint(path, state);

  const CheckpointState back = read_checkpoint(path);
  auto resumed = build_optimizer("  type: adam\n  lr: 0.01\n", 32);
  Tensor resumed_params({32});
  tensors_to_flat(back.parameters, entries, resumed_params, path);
  restore_optimizer(back, entries, *resumed, path);
  EXPECT_EQ(resumed->steps(), 3u);

  for (size_t i = 0; i < 32; ++i) grads.data()[i] = 0.5f;
  original->step(params, grads, 0.01f);
  resumed->step(resumed_params, grads, 0.01f);
  for (const ParamEntry& e : entries) {
    for (size_t i = e.offset; i < e.offset + num_elements(e.shape); ++i) {
      EXPECT_EQ(resumed_params.data()[i], params.data()[i]) << i;
    }
  }
}

TEST(CheckpointModel, AnotherOptimizerIsRefused) {
  const std::vector<ParamEntry> entries = padded_entries();
  CheckpointState state;
  capture_optimizer(*build_optimizer("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n", 32), entries, state);
  std::string message = checkpoint_error(
      [&] { restore_optimizer(state, entries, *build_optimizer("  type: adam\n  lr: 0.1\n", 32), "run.h5"); });
  EXPECT_NE(message.find("run.h5: was written by optimizer 'sgd', but the config builds 'adam'"), std::string::npos)
      << message;
  message = checkpoint_error(
      [&] { restore_optimizer(state, entries, *build_optimizer("  type: sgd\n  lr: 0.1\n", 32), "run.h5"); });
  EXPECT_NE(message.find("holds optimizer state [momentum], but the configured sgd keeps []"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace dptrain
