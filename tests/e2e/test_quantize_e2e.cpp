// `dptrain quantize` as a user meets it: a trained checkpoint quantized to int8 evaluates within a
// point or two of the float model through `dptrain eval`, from a file a fraction of the size; bad
// input is one clear message with exit 1, and nothing is written or damaged.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/run_command.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::CommandResult;
using e2e::run_command;

const std::string kBinary = DPTRAIN_BINARY;

// The checkpoint after 3 epochs of configs/synthetic_smoke.yaml: conv2d on the (signed) input, then
// two dense layers after ReLUs.
std::string trained_smoke(const test_util::TempDir& dir) {
  const CommandResult trained =
      run_command(kBinary + " train " + DPTRAIN_SOURCE_DIR + "/configs/synthetic_smoke.yaml --progress off" +
                  " --set device=cpu --set threads=2 --set checkpoint.dir=" + dir.file("ckpt"));
  EXPECT_EQ(trained.exit_code, 0) << trained.output;
  const std::vector<CheckpointFile> files = list_checkpoints(dir.file("ckpt"));
  return files.empty() ? "" : files.front().path;
}

testing::JsonValue eval_json(const std::string& checkpoint) {
  const CommandResult eval = run_command(kBinary + " eval --checkpoint " + checkpoint + " --json");
  EXPECT_EQ(eval.exit_code, 0) << eval.output;
  const size_t brace = eval.output.find('{');
  return testing::JsonParser(brace == std::string::npos ? "{}" : eval.output.substr(brace)).parse_document();
}

TEST(QuantizeE2E, TheInt8ModelEvaluatesLikeTheFloatOneFromASmallerFile) {
  test_util::TempDir dir("quantize");
  const std::string checkpoint = trained_smoke(dir);
  ASSERT_FALSE(checkpoint.empty());
  const std::string quantized = dir.file("int8.h5");
  const CommandResult made =
      run_command(kBinary + " quantize " + checkpoint + " --calibration-batches 3 --out " + quantized);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(made.output.find("int8 for 2 of 3 conv2d and dense weights"), std::string::npos) << made.output;
  EXPECT_NE(made.output.find("left in float32: 0.conv2d.weight: its input goes down to -"), std::string::npos)
      << made.output;
  EXPECT_NE(made.output.find("int8 arithmetic on this machine: "), std::string::npos) << made.output;
  const CheckpointState state = read_checkpoint(quantized);
  ASSERT_EQ(state.quantization.size(), 2u);
  EXPECT_EQ(state.quantization[0].name, "4.dense.weight");
  EXPECT_TRUE(state.optimizer_state.empty());
  // Momentum and float32 weights gone: well under half the file.
  EXPECT_LT(fs::file_size(quantized), fs::file_size(checkpoint) / 2);

  const testing::JsonValue float_eval = eval_json(checkpoint), int8_eval = eval_json(quantized);
  EXPECT_EQ(float_eval["int8_kernels"].string, "");
  EXPECT_NE(int8_eval["int8_kernels"].string, "") << "the quantized model did not compute in int8";
  EXPECT_GT(int8_eval["samples_per_second"].number, 0);
  EXPECT_GT(float_eval["test_accuracy"].number, 0.5) << "the smoke run did not learn";
  EXPECT_NEAR(int8_eval["test_accuracy"].number, float_eval["test_accuracy"].number, 0.02);
  EXPECT_NEAR(int8_eval["test_loss"].number, float_eval["test_loss"].number, 0.05);
}

TEST(QuantizeE2E, BenchPredictMeasuresTheModelsSideBySide) {
  test_util::TempDir dir("quantize_bench");
  const std::string checkpoint = trained_smoke(dir);
  ASSERT_FALSE(checkpoint.empty());
  const std::string quantized = dir.file("int8.h5");
  ASSERT_EQ(run_command(kBinary + " quantize " + checkpoint + " --out " + quantized).exit_code, 0);
  const CommandResult bench = run_command(kBinary + " bench predict --checkpoint " + checkpoint + " --checkpoint " +
                                          quantized + " --batch 32 --iterations 2 --repeats 3 --threads 1");
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  EXPECT_NE(bench.output.find("batch 32, 1 threads, 2 timed passes per repeat, median of 3 repeats"),
            std::string::npos)
      << bench.output;
  const size_t first = bench.output.find(checkpoint), second = bench.output.find(quantized);
  ASSERT_NE(first, std::string::npos) << bench.output;
  ASSERT_NE(second, std::string::npos) << bench.output;
  EXPECT_NE(bench.output.find("images/s   1.00x  cpu", first), std::string::npos) << bench.output;
  EXPECT_NE(bench.output.find("int8: ", second), std::string::npos) << bench.output;

  // Models of different input shapes are not compared.
  const CommandResult other = run_command(
      kBinary + " train " + DPTRAIN_SOURCE_DIR + "/configs/synthetic_smoke.yaml --progress off --set device=cpu" +
      " --set threads=1 --set train.epochs=1 --set data.shape=[1,8,8] --set checkpoint.dir=" + dir.file("other"));
  ASSERT_EQ(other.exit_code, 0) << other.output;
  const std::vector<CheckpointFile> files = list_checkpoints(dir.file("other"));
  ASSERT_FALSE(files.empty());
  const CommandResult mixed =
      run_command(kBinary + " bench predict --checkpoint " + checkpoint + " --checkpoint " + files.front().path);
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_NE(mixed.output.find("compare models of one shape"), std::string::npos) << mixed.output;
}

TEST(QuantizeE2E, BadInputIsOneClearErrorAndNothingIsWritten) {
  test_util::TempDir dir("quantize_errors");
  const CommandResult missing =
      run_command(kBinary + " quantize " + dir.file("none.h5") + " --out " + dir.file("q.h5"));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find(dir.file("none.h5")), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(dir.file("q.h5")));

  const std::string checkpoint = trained_smoke(dir);
  ASSERT_FALSE(checkpoint.empty());
  const uintmax_t size = fs::file_size(checkpoint);
  const CommandResult onto_itself = run_command(kBinary + " quantize " + checkpoint + " --out " + checkpoint);
  EXPECT_EQ(onto_itself.exit_code, 1) << onto_itself.output;
  EXPECT_NE(onto_itself.output.find("is the checkpoint itself"), std::string::npos) << onto_itself.output;
  EXPECT_EQ(fs::file_size(checkpoint), size);
  EXPECT_EQ(read_checkpoint(checkpoint).quantization.size(), 0u);

  const CommandResult no_batches =
      run_command(kBinary + " quantize " + checkpoint + " --calibration-batches 0 --out " + dir.file("q.h5"));
  EXPECT_EQ(no_batches.exit_code, 1) << no_batches.output;
  EXPECT_NE(no_batches.output.find("--calibration-batches must be at least 1"), std::string::npos)
      << no_batches.output;
  EXPECT_FALSE(fs::exists(dir.file("q.h5")));

  const std::string quantized = dir.file("int8.h5");
  ASSERT_EQ(run_command(kBinary + " quantize " + checkpoint + " --out " + quantized).exit_code, 0);
  const CommandResult twice = run_command(kBinary + " quantize " + quantized + " --out " + dir.file("q2.h5"));
  EXPECT_EQ(twice.exit_code, 1) << twice.output;
  EXPECT_NE(twice.output.find("is quantized already"), std::string::npos) << twice.output;

  const CommandResult resumed =
      run_command(kBinary + " train " + DPTRAIN_SOURCE_DIR + "/configs/synthetic_smoke.yaml --progress off" +
                  " --set device=cpu --set threads=1 --resume " + quantized);
  EXPECT_EQ(resumed.exit_code, 1) << resumed.output;
  EXPECT_NE(resumed.output.find("cannot be trained further"), std::string::npos) << resumed.output;
}

}  // namespace
}  // namespace dptrain
