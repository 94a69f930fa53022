#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/train/run_report.h"
#include "tests/runtime/train/train_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::TempDir;
using train_test::CapturedFile;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RunReport, OnlyRankZeroPrintsAndEveryRankLogsItsOwn) {
  CapturedFile console, own;
  RunReport report(console.file(), own.file(), ProgressStyle::Off, 1.0);
  report.log("to the console %d\n", 1);
  report.rank_log("to my log %d\n", 1);
  report.set_rank(2);  // say, after workers joined
  report.log("to the console %d\n", 2);
  report.rank_log("to my log %d\n", 2);
  EXPECT_EQ(console.text(), "to the console 1\n");
  EXPECT_EQ(own.text(), "to my log 1\nto my log 2\n");
}

TEST(RunReport, MetricsAreRankZerosAlone) {
  TempDir dir;
  RunReport other(nullptr, nullptr, ProgressStyle::Off, 1.0);
  other.set_rank(1);
  other.open_metrics(dir.file("other.jsonl"));
  other.started({"smoke", 2, 3, 32, 16, 1000}, {});
  EXPECT_FALSE(other.metrics().enabled());
  RunReport root(nullptr, nullptr, ProgressStyle::Off, 1.0);
  root.open_metrics(dir.file("root.jsonl"));
  root.started({"smoke", 2, 3, 32, 16, 1000}, {1, 0, 32});
  const std::vector<std::string> lines = lines_of(dir.file("root.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  for (const char* key : {"\"event\": \"start\"", "\"run\": \"smoke\"", "\"world_size\": 2", "\"epochs\": 3",
                          "\"steps_per_epoch\": 32", "\"batch_size\": 16", "\"parameters\": 1000", "\"epoch\": 1",
                          "\"step\": 32"}) {
    EXPECT_NE(lines[0].find(key), std::string::npos) << key << " in " << lines[0];
  }
}

TEST(RunReport, AnEpochIsOneLineAndOneRecordThatCheckpointsKeep) {
  TempDir dir;
  CapturedFile console;
  RunReport report(console.file(), nullptr, ProgressStyle::Off, 1.0);
  report.open_metrics(dir.file("metrics.jsonl"));
  EXPECT_EQ(report.last_epoch_record(), "");
  EpochSummary s;
  s.epoch = 2;
  s.step = 64;
  s.loss = 0.5;
  s.train_accuracy = 0.75;
  s.test = {0.625, 0.8, 512};
  s.images_per_sec = 1000;
  s.train_seconds = 2;
  s.data_wait_seconds = 0.5;
  s.comm_wait_seconds = 0.25;
  s.seconds = 2.5;
  report.epoch_done(s, 3, 2, 0.01);
  EXPECT_NE(console.text().find("epoch 2/3  loss 0.5000  train_acc 0.7500  test_loss 0.6250  test_acc 0.8000  "
                                "1000 img/s"),
            std::string::npos)
      << console.text();
  EXPECT_NE(console.text().find("(data wait 25.0%, comm wait 12.5%)"), std::string::npos) << console.text();
  const std::vector<std::string> lines = lines_of(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(report.last_epoch_record(), lines[0]);
  EXPECT_NE(lines[0].find("\"lr\": 0.01"), std::string::npos) << lines[0];
  // The record with its wall-clock time, once.
  EXPECT_NE(lines[0].find("\"time\": "), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("\"time\": "), lines[0].rfind("\"time\": ")) << lines[0];
}

TEST(RunReport, StepsOfAnEpochAreOneRecordOnRankZero) {
  TempDir dir;
  CapturedFile console;
  RunReport report(console.file(), nullptr, ProgressStyle::Off, 1.0);
  report.open_metrics(dir.file("metrics.jsonl"));
  StepSummary s;
  s.epoch = 2;
  s.step_in_epoch = 8;
  s.steps_per_epoch = 32;
  s.step = 40;
  s.loss = 0.5;
  s.train_accuracy = 0.75;
  s.running_loss = 0.625;
  s.running_accuracy = 0.6875;
  s.images_per_sec = 2000;
  s.lr = 0.05;
  report.step_done(s, 3);
  EXPECT_EQ(console.text(), "") << "no console line per step record";
  RunReport other(nullptr, nullptr, ProgressStyle::Off, 1.0);
  other.set_rank(1);
  other.open_metrics(dir.file("other.jsonl"));
  other.step_done(s, 3);
  const std::vector<std::string> lines = lines_of(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  for (const char* key : {"{\"event\": \"step\", \"epoch\": 2, ", "\"step_in_epoch\": 8", "\"steps_per_epoch\": 32",
                          "\"step\": 40", "\"world_size\": 3", "\"loss\": 0.5", "\"train_accuracy\": 0.75",
                          "\"running_loss\": 0.625", "\"running_accuracy\": 0.6875", "\"images_per_sec\": 2000",
                          "\"lr\": 0.05", "\"time\": "}) {
    EXPECT_NE(lines[0].find(key), std::string::npos) << key << " in " << lines[0];
  }
  EXPECT_FALSE(std::ifstream(dir.file("other.jsonl")).good()) << "only rank 0 writes metrics";
}

TEST(RunReport, AStopNamesTheSignalOrTheReasonAndThePosition) {
  TempDir dir;
  CapturedFile console;
  RunReport report(console.file(), nullptr, ProgressStyle::Off, 1.0);
  report.open_metrics(dir.file("metrics.jsonl"));
  report.stopped({RunEnd::Stopped, SIGTERM, ""}, {2, 5, 69}, 32, 2, "ckpt/c.h5");
  report.stopped({RunEnd::Stopped, 0, "too few workers"}, {3, 0, 96}, 32, 1, "");
  const std::string text = console.text();
  EXPECT_NE(text.find("stopped by SIGTERM in epoch 3 after step 5 of 32 (global step 69); checkpoint ckpt/c.h5; "
                      "continue with --resume auto"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("stopped because too few workers after epoch 3 (global step 96); no checkpoint written"),
            std::string::npos)
      << text;
  const std::vector<std::string> lines = lines_of(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"signal\": \"SIGTERM\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("\"reason\": \"too few workers\""), std::string::npos) << lines[1];
  EXPECT_EQ(lines[1].find("\"signal\""), std::string::npos) << lines[1];
}

}  // namespace
}  // namespace dptrain
