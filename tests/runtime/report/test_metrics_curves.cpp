// Reading metrics files back as curves: what `dptrain plot` draws, and the files it refuses.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/report/metrics.h"
#include "runtime/report/metrics_curves.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::TempDir;

std::string write_text(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

// The message of the DataError reading `path` throws.
std::string refusal(const std::string& path) {
  return test_util::error_of<DataError>([&] { read_metrics_curves(path, "run"); });
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(MetricsCurves, ReadsTheEpochAndStepRecordsATrainingRunWrites) {
  TempDir dir;
  const std::string path = dir.file("run.jsonl");
  {
    MetricsWriter writer(path);
    writer.write(MetricsRecord("start").add("run", "smoke").add("epoch", 0).add("step", 0));
    writer.write(MetricsRecord("step").add("epoch", 1).add("step_in_epoch", 4).add("steps_per_epoch", 8)
                     .add("step", 4).add("loss", 1.5).add("train_accuracy", 0.25));
    writer.write(MetricsRecord("checkpoint").add("path", "x.h5").add("seconds", 0.5));
    writer.write(MetricsRecord("step").add("epoch", 1).add("step_in_epoch", 8).add("steps_per_epoch", 8)
                     .add("step", 8).add("loss", 1.25).add("train_accuracy", 0.5));
    writer.write(MetricsRecord("epoch").add("epoch", 1).add("step", 8).add("loss", 1.375).add("train_accuracy", 0.375)
                     .add("test_loss", 1.0).add("test_accuracy", 0.625).add("seconds", 2.0));
    writer.write(MetricsRecord("end").add("epoch", 1).add("test_accuracy", 0.625));
  }
  const RunCurves run = read_metrics_curves(path, "smoke run");
  EXPECT_EQ(run.name, "smoke run");
  EXPECT_EQ(run.path, path);
  EXPECT_EQ(run.epoch_records, 1u);
  EXPECT_EQ(run.step_records, 2u);
  EXPECT_TRUE(run.has_times());
  const Curve& steps = run.curve(Quantity::StepLoss);
  ASSERT_EQ(steps.size(), 1u);
  ASSERT_EQ(steps[0].size(), 2u);
  EXPECT_DOUBLE_EQ(steps[0][0].epochs, 0.5);  // halfway through the first epoch
  EXPECT_DOUBLE_EQ(steps[0][0].value, 1.5);
  EXPECT_DOUBLE_EQ(steps[0][1].epochs, 1.0);
  EXPECT_DOUBLE_EQ(run.curve(Quantity::StepAccuracy)[0][1].value, 0.5);
  for (Quantity q : {Quantity::TrainLoss, Quantity::TestLoss, Quantity::TrainAccuracy, Quantity::TestAccuracy}) {
    ASSERT_EQ(run.curve(q).size(), 1u) << to_string(q);
    ASSERT_EQ(run.curve(q)[0].size(), 1u) << to_string(q);
    EXPECT_DOUBLE_EQ(run.curve(q)[0][0].epochs, 1.0) << to_string(q);
  }
  EXPECT_DOUBLE_EQ(run.curve(Quantity::TrainLoss)[0][0].value, 1.375);
  EXPECT_DOUBLE_EQ(run.curve(Quantity::TestLoss)[0][0].value, 1.0);
  EXPECT_DOUBLE_EQ(run.curve(Quantity::TrainAccuracy)[0][0].value, 0.375);
  EXPECT_DOUBLE_EQ(run.curve(Quantity::TestAccuracy)[0][0].value, 0.625);
  // Wall time counts from the file's first record, in order.
  const double first = steps[0][0].seconds, second = steps[0][1].seconds;
  const double epoch = run.curve(Quantity::TrainLoss)[0][0].seconds;
  EXPECT_GE(first, 0);
  EXPECT_LE(first, second);
  EXPECT_LE(second, epoch);
  EXPECT_LT(epoch, 60);
}

TEST(MetricsCurves, EachStartAfterTheFirstBeginsANewPieceOfLine) {
  TempDir dir;
  const std::string path = write_text(dir, "resumed.jsonl",
                                      "{\"event\": \"start\", \"epoch\": 0, \"time\": 100}\n"
                                      "{\"event\": \"epoch\", \"epoch\": 1, \"loss\": 2, \"time\": 110}\n"
                                      "{\"event\": \"epoch\", \"epoch\": 2, \"loss\": 1.5, \"time\": 120}\n"
                                      "{\"event\": \"stop\", \"signal\": \"SIGTERM\", \"time\": 125}\n"
                                      "{\"event\": \"start\", \"epoch\": 2, \"time\": 500}\n"
                                      "{\"event\": \"resume\", \"path\": \"c.h5\", \"time\": 501}\n"
                                      "{\"event\": \"epoch\", \"epoch\": 3, \"loss\": 1.25, \"time\": 510}\n");
  const RunCurves run = read_metrics_curves(path, "resumed");
  const Curve& loss = run.curve(Quantity::TrainLoss);
  ASSERT_EQ(loss.size(), 2u);
  ASSERT_EQ(loss[0].size(), 2u);
  ASSERT_EQ(loss[1].size(), 1u);
  EXPECT_DOUBLE_EQ(loss[0][0].seconds, 10);  // since the first record
  EXPECT_DOUBLE_EQ(loss[0][1].seconds, 20);
  EXPECT_DOUBLE_EQ(loss[1][0].seconds, 410);  // the stop shows as a gap
  EXPECT_DOUBLE_EQ(loss[1][0].epochs, 3);
  EXPECT_TRUE(run.curve(Quantity::TestLoss).empty()) << "no test_loss in these records";
}

TEST(MetricsCurves, NonFiniteValuesAndRecordsWithoutTimesLeaveOutWhatTheyLack) {
  TempDir dir;
  const std::string path = write_text(dir, "old.jsonl",
                                      "{\"event\": \"start\", \"run\": \"x\"}\n"
                                      "{\"event\": \"epoch\", \"epoch\": 1, \"loss\": null, \"test_loss\": 0.5, "
                                      "\"extra\": [1, {\"a\": \"b\"}]}\n"
                                      "{\"event\": \"launch\", \"launch\": 1, \"status\": \"ok\"}\n"
                                      "{\"event\": \"epoch\", \"epoch\": 2, \"loss\": 0.75, \"test_loss\": 0.25}");
  const RunCurves run = read_metrics_curves(path, "old");
  EXPECT_FALSE(run.has_times());
  ASSERT_EQ(run.curve(Quantity::TrainLoss).size(), 1u);
  ASSERT_EQ(run.curve(Quantity::TrainLoss)[0].size(), 1u) << "the null loss is left out";
  EXPECT_DOUBLE_EQ(run.curve(Quantity::TrainLoss)[0][0].epochs, 2);
  ASSERT_EQ(run.curve(Quantity::TestLoss)[0].size(), 2u) << "a last line without its newline is read too";
  EXPECT_TRUE(std::isnan(run.curve(Quantity::TestLoss)[0][0].seconds));
}

TEST(MetricsCurves, ALineThatIsNotAMetricsRecordIsNamedByFileAndLine) {
  TempDir dir;
  const std::string head = "{\"event\": \"start\"}\n{\"event\": \"epoch\", \"epoch\": 1, \"loss\": 1}\n";
  const struct {
    const char* line;
    const char* says;
  } cases[] = {
      {"epoch 2 loss 0.5", "not a metrics record: invalid JSON"},
      {"{\"event\": \"epoch\", \"epoch\": 2,", "not a metrics record: invalid JSON"},
      {"", "not a metrics record: invalid JSON"},
      {"[1, 2]", "not a metrics record: a JSON array, not an object"},
      {"{\"loss\": 0.5}", "no \"event\" string"},
      {"{\"event\": 3}", "no \"event\" string"},
      {"{\"event\": \"epoch\", \"epoch\": 2, \"loss\": \"low\"}", "\"loss\" is a string, expected a number"},
      {"{\"event\": \"epoch\", \"loss\": 0.5}", "this \"epoch\" record has no number \"epoch\""},
      {"{\"event\": \"step\", \"epoch\": 1, \"step_in_epoch\": 2}", "has no number \"steps_per_epoch\""},
      {"{\"event\": \"step\", \"epoch\": 1, \"step_in_epoch\": 2, \"steps_per_epoch\": 0}", "is not positive"},
      {"{\"event\": \"start\", \"time\": \"noon\"}", "\"time\" is a string"},
      {"{\"event\": \"epoch\", \"epoch\": 2, \"loss\": 1e999}",
       "not a metrics record: number overflow parsing '1e999'"},
  };
  for (const auto& c : cases) {
    const std::string path = write_text(dir, "bad.jsonl", head + c.line + "\n{\"event\": \"end\"}\n");
    const std::string message = refusal(path);
    EXPECT_TRUE(has(message, path + ":3: ")) << c.line << " -> " << message;
    EXPECT_TRUE(has(message, c.says)) << c.line << " -> " << message;
  }
  // Binary data (a PNG given by mistake) is refused at its first line.
  const std::string png = write_text(dir, "curves.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  EXPECT_TRUE(has(refusal(png), png + ":1: not a metrics record")) << refusal(png);
  // One endless line is refused without reading it whole.
  const std::string endless = write_text(dir, "endless.jsonl", "{\"event\": \"start\"}\n" + std::string(3 << 20, 'x'));
  EXPECT_TRUE(has(refusal(endless), endless + ":2: a line longer than 1 MiB")) << refusal(endless);
}

TEST(MetricsCurves, MissingFilesFoldersAndFilesWithNothingToPlotAreRefused) {
  TempDir dir;
  const std::string missing = dir.file("missing.jsonl");
  EXPECT_TRUE(has(refusal(missing), missing + ": cannot read the metrics file (No such file or directory)"))
      << refusal(missing);
  EXPECT_TRUE(has(refusal(dir.path()), dir.path() + ": not a regular file")) << refusal(dir.path());
  const std::string fifo = dir.file("pipe.jsonl");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(has(refusal(fifo), "not a regular file")) << "a FIFO would block the reader";
  const std::string empty = write_text(dir, "empty.jsonl", "");
  EXPECT_TRUE(has(refusal(empty), empty + ": no \"epoch\" or \"step\" records to plot (0 records read"))
      << refusal(empty);
  const std::string started = write_text(dir, "started.jsonl", "{\"event\": \"start\"}\n{\"event\": \"end\"}\n");
  EXPECT_TRUE(has(refusal(started), "(2 records read")) << refusal(started);
}

TEST(MetricsCurves, RunsAreNamedByTheirFilesStemsToldApartByTheirFolders) {
  EXPECT_EQ(default_run_names({"runs/lr-0.1.jsonl", "b.jsonl", "/x/y/resnet"}),
            (std::vector<std::string>{"lr-0.1", "b", "resnet"}));
  EXPECT_EQ(default_run_names({"a/metrics.jsonl", "b/metrics.jsonl", "c.jsonl"}),
            (std::vector<std::string>{"a/metrics", "b/metrics", "c"}));
  EXPECT_EQ(default_run_names({"a/m.jsonl", "a/m.jsonl"}), (std::vector<std::string>{"a/m (1)", "a/m (2)"}));
}

}  // namespace
}  // namespace dptrain
