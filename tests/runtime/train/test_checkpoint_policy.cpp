#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/core/errors.h"
#include "runtime/train/checkpoint_policy.h"
#include "runtime/train/run_report.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using namespace std::chrono_literals;
using test_util::TempDir;

// A clock that moves only when the test moves it.
struct FakeClock {
  CheckpointPolicy::Clock::time_point now{};
  CheckpointPolicy::Now reader() {
    return [this] { return now; };
  }
};

CheckpointSettings settings(const std::string& dir, size_t every_epochs = 1, double every_minutes = 0,
                            size_t keep = 3) {
  CheckpointSettings s;
  s.dir = dir;
  s.every_epochs = every_epochs;
  s.every_minutes = every_minutes;
  s.keep = keep;
  return s;
}

TEST(CheckpointPolicy, SavesEveryNEpochsAndAfterTheLast) {
  const CheckpointPolicy policy(settings("ckpt", 3));
  EXPECT_FALSE(policy.due_after_epoch(1, false));
  EXPECT_FALSE(policy.due_after_epoch(2, false));
  EXPECT_TRUE(policy.due_after_epoch(3, false));
  EXPECT_FALSE(policy.due_after_epoch(4, false));
  EXPECT_TRUE(policy.due_after_epoch(6, false));
  EXPECT_TRUE(policy.due_after_epoch(7, true));  // the last epoch, whatever every_epochs says
}

TEST(CheckpointPolicy, SavesInsideAnEpochEveryMMinutesCountedFromTheLastSave) {
  FakeClock clock;
  CheckpointPolicy policy(settings("ckpt", 1, 2.0), clock.reader());
  policy.start_clock();
  clock.now += 119s;
  EXPECT_FALSE(policy.due_inside_epoch());
  clock.now += 1s;
  EXPECT_TRUE(policy.due_inside_epoch());
  policy.saved("ckpt/a.h5", 10);
  EXPECT_FALSE(policy.due_inside_epoch());
  clock.now += 2min;
  EXPECT_TRUE(policy.due_inside_epoch());
  policy.start_clock();  // a new run counts from its start
  EXPECT_FALSE(policy.due_inside_epoch());
}

TEST(CheckpointPolicy, NeverSavesInsideAnEpochWithoutEveryMinutes) {
  FakeClock clock;
  CheckpointPolicy policy(settings("ckpt"), clock.reader());
  clock.now += 1000h;
  EXPECT_FALSE(policy.due_inside_epoch());
}

TEST(CheckpointPolicy, RemembersTheSavedPositionSoItIsWrittenOnce) {
  CheckpointPolicy policy(settings("ckpt"));
  EXPECT_FALSE(policy.holds_checkpoint());
  EXPECT_EQ(policy.saved_at(0), nullptr);
  policy.saved("ckpt/ckpt-e000001-s00000032.h5", 32);
  EXPECT_TRUE(policy.holds_checkpoint());
  ASSERT_NE(policy.saved_at(32), nullptr);
  EXPECT_EQ(*policy.saved_at(32), "ckpt/ckpt-e000001-s00000032.h5");
  EXPECT_EQ(policy.saved_at(33), nullptr);
}

TEST(CheckpointPolicy, IsOffWithoutAFolder) {
  EXPECT_FALSE(CheckpointPolicy(settings("")).enabled());
  EXPECT_TRUE(CheckpointPolicy(settings("ckpt")).enabled());
  EXPECT_NO_THROW(CheckpointPolicy(settings("")).check_folder_for_new_run("run.yaml"));
}

TEST(CheckpointPolicy, ANewRunNeedsAFolderWithoutAnEarlierRunsCheckpoints) {
  TempDir dir;
  const std::string folder = dir.file("ckpt");
  const CheckpointPolicy policy(settings(folder));
  EXPECT_NO_THROW(policy.check_folder_for_new_run("run.yaml"));
  EXPECT_TRUE(std::filesystem::is_directory(folder));
  EXPECT_TRUE(std::filesystem::is_empty(folder));  // the write probe is gone
  save_checkpoint(folder, checkpoint_test::sample_state(1, 40));
  try {
    policy.check_folder_for_new_run("run.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("run.yaml: checkpoint.dir '" + folder + "' already holds 1 checkpoint(s)"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("--resume auto"), std::string::npos) << message;
  }
}

TEST(CheckpointPolicy, WriteSavesPrunesReportsAndRemembers) {
  TempDir dir;
  const std::string metrics = dir.file("metrics.jsonl");
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  RunReport report(log, nullptr, ProgressStyle::Off, 1.0);
  report.open_metrics(metrics);
  CheckpointPolicy policy(settings(dir.file("ckpt"), 1, 0, 2));
  std::string newest;
  for (uint64_t step : {10, 20, 30}) newest = policy.write(checkpoint_test::sample_state(step / 10, step), report);
  // Each save is one line with the file's size as byte_size_text writes it.
  std::rewind(log);
  char line[4096] = {};
  ASSERT_NE(std::fgets(line, sizeof line, log), nullptr);
  std::fclose(log);
  const std::string expected = "checkpoint " + dir.file("ckpt") + "/ckpt-e000001-s00000010.h5 (";
  EXPECT_EQ(std::string(line).rfind(expected, 0), 0u) << line;
  EXPECT_NE(std::string(line).find(" KiB, "), std::string::npos) << line;
  EXPECT_EQ(list_checkpoints(dir.file("ckpt")).size(), 2u);  // checkpoint.keep
  EXPECT_EQ(list_checkpoints(dir.file("ckpt")).front().path, newest);
  ASSERT_NE(policy.saved_at(30), nullptr);
  EXPECT_EQ(*policy.saved_at(30), newest);
  std::ifstream in(metrics);
  size_t records = 0;
  for (std::string line; std::getline(in, line); ++records) {
    EXPECT_NE(line.find("\"event\": \"checkpoint\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"bytes\": "), std::string::npos) << line;
  }
  EXPECT_EQ(records, 3u);
}

}  // namespace
}  // namespace dptrain
