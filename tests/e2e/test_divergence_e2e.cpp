// End to end: a run whose loss diverges stops with exit 1 naming the step, records why in its
// metrics, and leaves the last good checkpoint as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::CommandResult;
using e2e::run_command;

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path().filename().string());
  return out;
}

TEST(Divergence, HugeLearningRateStopsTheRunAndKeepsTheLastCheckpoint) {
  test_util::TempDir dir;
  const std::string checkpoints = dir.path() + "/ckpt", metrics = dir.path() + "/metrics.jsonl";
  const std::string run = std::string(DPTRAIN_BINARY) + " train " + kSmoke +
                          " --set threads=1 --set device=cpu --set checkpoint.dir=" + checkpoints;
  const CommandResult first = run_command(run + " --set train.epochs=1");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::vector<std::string> saved = files_in(checkpoints);
  ASSERT_EQ(saved.size(), 1u);
  const std::string good = checkpoints + "/" + saved[0];
  const std::string good_bytes = read_all(good);

  const CommandResult diverged =
      run_command(run + " --set train.epochs=3 --set optimizer.lr=1e30 --resume auto --metrics " + metrics);
  EXPECT_EQ(diverged.exit_code, 1) << diverged.output;
  EXPECT_NE(diverged.output.find("training diverged at step "), std::string::npos) << diverged.output;
  EXPECT_NE(diverged.output.find("(epoch 2, step "), std::string::npos) << diverged.output;
  EXPECT_NE(diverged.output.find("lower optimizer.lr"), std::string::npos) << diverged.output;
  EXPECT_NE(read_all(metrics).find("\"event\": \"diverged\""), std::string::npos) << read_all(metrics);
  EXPECT_EQ(files_in(checkpoints), saved);
  EXPECT_EQ(read_all(good), good_bytes);
  EXPECT_NO_THROW(read_checkpoint(good));
}

}  // namespace
}  // namespace dptrain
