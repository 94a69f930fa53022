// `dptrain plot` as a user runs it: train two small runs with --metrics (one with step records), draw
// them into one PNG, and refuse bad input with one message and exit code 1, leaving an existing
// picture as it was.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/e2e/run_command.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::CommandResult;
using e2e::run_command;
using test_util::read_file;
using test_util::TempDir;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

std::vector<testing::JsonValue> records_of(const std::string& path) {
  std::vector<testing::JsonValue> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) records.push_back(testing::JsonParser(line).parse_document());
  return records;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The names in `dir`, sorted.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A small metrics file as dptrain writes it: two epochs, with wall times.
void write_valid_metrics(const std::string& path) {
  std::ofstream(path) << "{\"event\": \"start\", \"run\": \"x\", \"epoch\": 0, \"step\": 0, \"time\": 1700000000.0}\n"
                         "{\"event\": \"epoch\", \"epoch\": 1, \"loss\": 1.2, \"train_accuracy\": 0.4, "
                         "\"test_loss\": 1.1, \"test_accuracy\": 0.5, \"time\": 1700000010.5}\n"
                         "{\"event\": \"epoch\", \"epoch\": 2, \"loss\": 0.8, \"train_accuracy\": 0.7, "
                         "\"test_loss\": 0.9, \"test_accuracy\": 0.75, \"time\": 1700000021.0}\n";
}

TEST(PlotCommand, DrawsTwoTrainedRunsWithStepRecordsIntoOnePng) {
  TempDir dir;
  const std::string a = dir.file("lr-0.05.jsonl"), b = dir.file("lr-0.02.jsonl"), png = dir.file("curves.png");
  // Half the smoke data: 16 steps of 64 samples an epoch.
  const std::string train = kBinary + " train " + kSmoke +
                            " --progress off --set threads=2 --set device=cpu --set data.train_samples=1024 "
                            "--set data.test_samples=256";
  CommandResult r = run_command(train + " --set train.epochs=2 --set train.metrics_every_steps=4 --metrics " + a);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(train + " --set train.epochs=1 --set optimizer.lr=0.02 --metrics " + b);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // Run a: 16 steps an epoch, a step record every 4, each with a wall-clock time.
  const std::vector<testing::JsonValue> records = records_of(a);
  std::vector<std::string> events;
  for (const auto& record : records) {
    events.push_back(record["event"].string);
    ASSERT_TRUE(record.has("time")) << "every record has a time";
  }
  EXPECT_EQ(events, (std::vector<std::string>{"start", "step", "step", "step", "step", "epoch", "step", "step", "step",
                                              "step", "epoch", "end"}));
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(records[0]["time"].number, now - 600);
  EXPECT_LE(records[0]["time"].number, now + 1);
  for (size_t i = 1; i < records.size(); ++i) EXPECT_GE(records[i]["time"].number, records[i - 1]["time"].number);
  // An epoch's loss is the mean of its four step records' losses (4 steps of 64 samples each), and the
  // last step record's running loss.
  for (size_t epoch = 0; epoch < 2; ++epoch) {
    double sum = 0;
    for (size_t k = 0; k < 4; ++k) {
      const testing::JsonValue& step = records[1 + epoch * 5 + k];
      EXPECT_EQ(step["epoch"].number, epoch + 1);
      EXPECT_EQ(step["step_in_epoch"].number, 4 * (k + 1));
      EXPECT_EQ(step["steps_per_epoch"].number, 16);
      EXPECT_EQ(step["step"].number, 16 * epoch + 4 * (k + 1));
      EXPECT_GT(step["images_per_sec"].number, 0);
      EXPECT_EQ(step["lr"].number, 0.05);
      sum += step["loss"].number;
    }
    const testing::JsonValue& summary = records[5 + epoch * 5];
    EXPECT_NEAR(sum / 4, summary["loss"].number, 1e-4 * summary["loss"].number);
    EXPECT_NEAR(records[4 + epoch * 5]["running_loss"].number, summary["loss"].number, 1e-5 * summary["loss"].number);
    EXPECT_NEAR(records[4 + epoch * 5]["running_accuracy"].number, summary["train_accuracy"].number, 1e-5);
  }
  EXPECT_EQ(records_of(b).size(), 3u) << "no step records without train.metrics_every_steps";

  r = run_command(kBinary + " plot " + a + " " + b + " -o " + png);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "wrote " + png + ": 2 run(s) (lr-0.05, lr-0.02), 3 epoch and 8 step records")) << r.output;
  const std::string bytes = read_file(png);
  EXPECT_EQ(bytes.substr(0, 8), kPngSignature);
  EXPECT_EQ(bytes.substr(16, 8), std::string("\0\0\x06\x40\0\0\x03\xe8", 8)) << "1600 x 1000";
  EXPECT_GT(bytes.size(), 30000u) << "four panels of curves, axes and keys";
  EXPECT_LT(bytes.size(), 5000000u);
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"curves.png", "lr-0.02.jsonl", "lr-0.05.jsonl"}))
      << "no temporary file left behind";

  // Drawn again with names of one's own, over the picture already there.
  r = run_command(kBinary + " plot " + a + " " + b + " -o " + png + " --name 'fast lr' --name slow");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "(fast lr, slow)")) << r.output;
  EXPECT_EQ(read_file(png).substr(0, 8), kPngSignature);
}

TEST(PlotCommand, BadInputIsOneMessageAndExitOneAndTheOldPictureStays) {
  TempDir dir;
  const std::string good = dir.file("good.jsonl"), png = dir.file("old.png");
  write_valid_metrics(good);
  std::ofstream(png) << "the picture from before";
  std::ofstream(dir.file("notes.txt")) << "loss went down\n";
  std::ofstream(dir.file("started.jsonl")) << "{\"event\": \"start\", \"run\": \"x\"}\n";
  const struct {
    std::string args;
    std::string says;
  } cases[] = {
      {dir.file("missing.jsonl"),
       dir.file("missing.jsonl") + ": cannot read the metrics file (No such file or directory)"},
      {good + " " + dir.file("notes.txt"), dir.file("notes.txt") + ":1: not a metrics record: invalid JSON"},
      {dir.file("started.jsonl"), dir.file("started.jsonl") + ": no \"epoch\" or \"step\" records to plot"},
      {good + " -o " + good, "-o " + good + ": is one of the metrics files being plotted"},
      {good + " -o " + dir.path(), "-o " + dir.path() + ": is a folder"},
      {good + " -o " + dir.file("no/such/folder.png"),
       dir.file("no/such/folder.png") + ": cannot create a temporary file in " + dir.file("no/such")},
  };
  for (const auto& c : cases) {
    const std::string command = kBinary + " plot " + c.args + (has(c.args, " -o ") ? "" : " -o " + png);
    const CommandResult r = run_command(command);
    EXPECT_EQ(r.exit_code, 1) << command << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "dptrain plot: error: " + c.says)) << command << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one message:\n" << r.output;
  }
  EXPECT_EQ(read_file(png), "the picture from before");
  EXPECT_EQ(read_file(good).substr(0, 1), "{");

  // gnuplot missing, failing or hanging: the message says so, and the old picture stays whole.
  const std::string bin = dir.file("bin");
  fs::create_directories(bin);
  CommandResult r = run_command("env PATH=" + bin + " " + kBinary + " plot " + good + " -o " + png);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "gnuplot is not installed")) << r.output;
  EXPECT_TRUE(has(r.output, "apt-get install gnuplot-nox")) << r.output;
  const std::string fake = bin + "/gnuplot";
  std::ofstream(fake) << "#!/bin/sh\necho \"line 7: unknown or ambiguous terminal type\" >&2\nexit 1\n";
  ASSERT_EQ(::chmod(fake.c_str(), 0755), 0);
  r = run_command("env PATH=" + bin + ":/usr/bin:/bin " + kBinary + " plot " + good + " -o " + png);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "gnuplot failed (exit code 1) drawing " + png)) << r.output;
  EXPECT_TRUE(has(r.output, "gnuplot said: line 7: unknown or ambiguous terminal type")) << r.output;
  std::ofstream(fake) << "#!/bin/sh\nexec sleep 60\n";
  const auto start = std::chrono::steady_clock::now();
  r = run_command("env PATH=" + bin + ":/usr/bin:/bin " + kBinary + " plot " + good + " -o " + png + " --timeout 1");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "gnuplot did not finish drawing " + png + " within 1 s")) << r.output;
  EXPECT_EQ(read_file(png), "the picture from before");
  EXPECT_EQ(names_in(dir.path()),
            (std::vector<std::string>{"bin", "good.jsonl", "notes.txt", "old.png", "started.jsonl"}))
      << "no temporary file left behind";

  // A --name for each file, or none: a bad command line (exit code 2).
  r = run_command(kBinary + " plot " + good + " " + good + " -o " + png + " --name one");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--name: given 1 time(s) for 2 file(s)")) << r.output;
  r = run_command(kBinary + " plot " + good);
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace dptrain
