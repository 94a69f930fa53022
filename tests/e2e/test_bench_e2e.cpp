// End to end: `dptrain bench peak`, and the model FLOPs, GEMM peak share and peak memory that
// `bench train` reports beside its images/s, and the rate columns of `bench layers`.
#include <gtest/gtest.h>

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/run_command.h"
#include "tests/json_value.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using e2e::CommandResult;
using e2e::run_command;
using testing::JsonValue;
using testing::parse_json;

const std::string kBenchBinary = DPTRAIN_BINARY;
const std::string kBenchSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
const std::string kBenchMpirun =
    "env OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo OMPI_ALLOW_RUN_AS_ROOT=1 "
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun --oversubscribe --bind-to none -np 2 ";

// The last `count` blank-separated cells of a table row ("" for each one missing).
std::vector<std::string> last_cells(const std::string& row, size_t count) {
  std::vector<std::string> cells;
  std::istringstream in(row);
  for (std::string cell; in >> cell;) cells.push_back(cell);
  while (cells.size() < count) cells.insert(cells.begin(), "");
  return std::vector<std::string>(cells.end() - static_cast<std::ptrdiff_t>(count), cells.end());
}

// The JSON object a command printed on its last line that starts with '{'.
JsonValue last_json_line(const std::string& output) {
  const size_t start = output.rfind("\n{") == std::string::npos ? output.find('{') : output.rfind("\n{") + 1;
  return parse_json(output.substr(start, output.find('\n', start) - start));
}

TEST(BenchPeak, JsonHasTheMeasuredRateSizeThreadsAndRepeats) {
  const CommandResult r = run_command("timeout 60 " + kBenchBinary + " bench peak --size 256 --repeats 3 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JsonValue line = last_json_line(r.output);
  EXPECT_EQ(line["benchmark"].string, "gemm_peak");
  EXPECT_EQ(line["size"].number, 256);
  EXPECT_EQ(line["threads"].number, 1);
  EXPECT_EQ(line["repeats"].number, 3);
  EXPECT_EQ(line["workers"].number, 1);
  ASSERT_EQ(line["repeat_gflops"].array.size(), 3u);
  EXPECT_GT(line["gflops"].number, 0);
  EXPECT_GE(line["best_gflops"].number, line["gflops"].number);
  EXPECT_EQ(line["job_gflops"].number, line["gflops"].number);
}

TEST(BenchPeak, UnderMpirunEveryWorkerMeasuresAndRankZeroPrintsTheSum) {
  const CommandResult r =
      run_command(kBenchMpirun + kBenchBinary + " bench peak --size 128 --repeats 1 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find('{'), r.output.rfind('{')) << "one line, from rank 0:\n" << r.output;
  const JsonValue line = last_json_line(r.output);
  EXPECT_EQ(line["workers"].number, 2);
  // Rank 0's median plus rank 1's (a positive rate).
  EXPECT_GT(line["job_gflops"].number, line["gflops"].number);
}

TEST(BenchPeak, TextNamesTheProductAndTheRate) {
  const CommandResult r = run_command("timeout 60 " + kBenchBinary + " bench peak --size 128 --repeats 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cblas_sgemm 128 x 128 x 128 (float32)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("GEMM peak: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" GFLOP/s (median"), std::string::npos) << r.output;
}

TEST(BenchPeak, RefusesAnEmptyProduct) {
  const CommandResult r = run_command(kBenchBinary + " bench peak --size 0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--size"), std::string::npos) << r.output;
}

TEST(BenchTrain, JsonReportsModelFlopsAchievedRatePeakShareAndMemory) {
  const CommandResult r = run_command("timeout 120 " + kBenchBinary + " bench train " + kBenchSmoke +
                                      " --json --steps 2 --repeats 1 --warmup 0 --peak-size 128 --set threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JsonValue line = last_json_line(r.output);
  // synthetic_smoke, by hand: conv 2 * (2 * 8 * 12 * 12 * 9 + 1152) (no dx), dense 288 -> 32 and
  // 32 -> 4 with bias, forward + weight gradient + data gradient.
  const double flops = 2 * 21888.0 + (3 * 18432.0 + 2 * 32) + (3 * 256.0 + 2 * 4);
  EXPECT_NEAR(line["mflop_per_image"].number, flops / 1e6, 1e-4);
  EXPECT_NEAR(line["gflops"].number, line["images_per_sec"].number * flops / 1e9, 0.01 * line["gflops"].number);
  EXPECT_GT(line["peak_gflops"].number, 0);
  EXPECT_NEAR(line["peak_share"].number, line["gflops"].number / line["peak_gflops"].number, 1e-3);
  EXPECT_GT(line["peak_rss_mib"].number, 1);
}

TEST(BenchTrain, ReproducibleRunsAllReduceTwiceTheGradientBytes) {
  // Exact sums travel as one int64 per parameter instead of one float.
  auto bytes = [](const std::string& reproducible) {
    const CommandResult r =
        run_command(kBenchMpirun + kBenchBinary + " bench train " + kBenchSmoke +
                    " --json --steps 2 --repeats 1 --warmup 0 --peak-size 0 --set threads=1 --set train.reproducible=" +
                    reproducible);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const JsonValue line = last_json_line(r.output);
    EXPECT_EQ(line["reproducible"].kind, JsonValue::Kind::Bool) << r.output;
    EXPECT_EQ(line["reproducible"].boolean, reproducible == "true") << r.output;
    return line["allreduce_bytes_per_step"].number;
  };
  const double float_bytes = bytes("false"), exact_bytes = bytes("true");
  EXPECT_GT(float_bytes, 1000);
  EXPECT_EQ(exact_bytes, 2 * float_bytes);
}

TEST(BenchTrain, PeakSizeZeroMeasuresNoPeak) {
  const CommandResult json = run_command("timeout 120 " + kBenchBinary + " bench train " + kBenchSmoke +
                                         " --json --steps 2 --repeats 1 --warmup 0 --peak-size 0 --set threads=1");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const JsonValue line = last_json_line(json.output);
  EXPECT_EQ(line["peak_gflops"].kind, JsonValue::Kind::Null);
  EXPECT_EQ(line["peak_share"].kind, JsonValue::Kind::Null);
  const CommandResult text = run_command("timeout 120 " + kBenchBinary + " bench train " + kBenchSmoke +
                                         " --steps 2 --repeats 1 --warmup 0 --peak-size 0 --set threads=1");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("model: 0.10 MFLOP per training image (forward+backward), "), std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("(GEMM peak not measured: --peak-size 0)"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("peak resident memory: "), std::string::npos) << text.output;
}

TEST(BenchTrain, TextComparesTheAchievedRateWithThePeakMeasuredNow) {
  const CommandResult r = run_command("timeout 120 " + kBenchBinary + " bench train " + kBenchSmoke +
                                      " --steps 2 --repeats 1 --warmup 0 --peak-size 128 --set threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(" GFLOP/s achieved, "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("% of the GEMM peak "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" GFLOP/s measured now"), std::string::npos) << r.output;
}

TEST(BenchLayers, ArithmeticLayersInGflopsMemoryLayersInGigabytes) {
  const CommandResult r = run_command("timeout 120 " + kBenchBinary + " bench layers " + kBenchSmoke +
                                      " --iterations 2 --set threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("GFLOP/s   GFLOP/s      GB/s      GB/s"), std::string::npos) << r.output;
  // Each row ends in fwd and bwd GFLOP/s, then fwd and bwd GB/s; "-" where a column does not apply.
  auto row_of = [&](const std::string& name) {
    const size_t at = r.output.find(name);
    EXPECT_NE(at, std::string::npos) << name << "\n" << r.output;
    return at == std::string::npos ? std::string() : r.output.substr(at, r.output.find('\n', at) - at);
  };
  const std::vector<std::string> conv = last_cells(row_of("0.conv2d"), 4);
  EXPECT_GT(std::stod(conv[0]), 0);
  EXPECT_GT(std::stod(conv[1]), 0);
  EXPECT_EQ(conv[2], "-");
  EXPECT_EQ(conv[3], "-");
  for (const char* memory_bound : {"2.max_pool2d", "5.relu"}) {
    const std::vector<std::string> cells = last_cells(row_of(memory_bound), 4);
    EXPECT_EQ(cells[0], "-") << memory_bound;
    EXPECT_EQ(cells[1], "-") << memory_bound;
    EXPECT_GT(std::stod(cells[2]), 0) << memory_bound;
    EXPECT_GT(std::stod(cells[3]), 0) << memory_bound;
  }
  // The relu before the pool runs inside it (docs/speed.md, relu absorbed by max-pooling).
  EXPECT_NE(row_of("1.relu").find("in the next layer"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("absorbed: relu into max_pool2d (1 layer)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("all FLOPs over all time"), std::string::npos) << r.output;
  // The smoke model's one convolution reads one channel: im2col, whatever the build.
  EXPECT_NE(r.output.find("convolution kernels: im2col + BLAS (1 layer) (cpu_convolution: auto)"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace dptrain
