// cluster/scaling/scaling.sh on a small config, 1 and 2 workers: the CSV, the table and the plot,
// and `dptrain bench train --json` reporting the all-reduce time not hidden behind backward.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/run_command.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kSource = DPTRAIN_SOURCE_DIR;
const std::string kSmoke = kSource + "/configs/synthetic_smoke.yaml";
const std::string kEnv =
    "env OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo OMPI_ALLOW_RUN_AS_ROOT=1 "
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ";

using e2e::CommandResult;
using e2e::run_command;

std::string temp_dir(const std::string& name) { return test_util::temp_dir("dptrain_scaling_e2e", name); }

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    for (std::string cell; std::getline(s, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

TEST(BenchTrainJson, ReportsExposedAllReducePerStepAndItsShare) {
  const CommandResult r = run_command(kEnv + "OMP_NUM_THREADS=1 timeout 120 mpirun --oversubscribe --bind-to none -np 2 " +
                                      DPTRAIN_BINARY + " bench train " + kSmoke +
                                      " --json --steps 4 --repeats 1 --set threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const testing::JsonValue line = testing::parse_json(r.output.substr(r.output.find('{')));
  EXPECT_EQ(line["workers"].number, 2);
  EXPECT_GT(line["images_per_sec"].number, 0);
  EXPECT_GE(line["comm_exposed_seconds_per_step"].number, 0);
  EXPECT_NEAR(line["comm_exposed_seconds_per_step"].number * line["steps"].number, line["comm_wait_seconds"].number,
              1e-3);
  EXPECT_GE(line["comm_share"].number, 0);
  EXPECT_LE(line["comm_share"].number, 1);
  EXPECT_GT(line["step_seconds"].number, 0);
}

TEST(ScalingScript, StrongAndWeakOverOneAndTwoWorkersWriteCsvTableAndPlot) {
  const std::string out = temp_dir("both");
  const CommandResult r = run_command(kEnv + "timeout 300 " + kSource + "/cluster/scaling/scaling.sh " + kSmoke +
                                      " --dptrain " + DPTRAIN_BINARY + " --max-workers 2 --mode both --steps 4 --repeats 1" +
                                      " --global-batch 64 --worker-batch 32 --mpirun-args '--oversubscribe --bind-to none'" +
                                      " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = read_csv(out + "/scaling.csv");
  ASSERT_EQ(rows.size(), 5u) << r.output;  // header, strong 1-2, weak 1-2
  EXPECT_EQ(rows[0][0], "mode");
  EXPECT_EQ(rows[0][8], "comm_exposed_ms_per_step");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"strong", "64"}, {"strong", "64"}, {"weak", "32"}, {"weak", "64"}};  // mode, global batch
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 10u) << i;
    EXPECT_EQ(rows[i][0], expected[i - 1].first) << i;
    EXPECT_EQ(rows[i][1], std::to_string((i - 1) % 2 + 1)) << i;
    EXPECT_EQ(rows[i][2], expected[i - 1].second) << i;
    EXPECT_GT(std::stod(rows[i][4]), 0) << "images/s, row " << i;
    EXPECT_GE(std::stod(rows[i][8]), 0) << "exposed all-reduce, row " << i;
  }
  EXPECT_EQ(rows[1][6], "1.000") << "one worker is the reference: efficiency 1";
  EXPECT_EQ(std::stod(rows[1][8]), 0.0) << "one worker exposes no all-reduce";
  std::ifstream table(out + "/scaling.md");
  std::stringstream text;
  text << table.rdbuf();
  EXPECT_NE(text.str().find("| strong | 2 | 64 |"), std::string::npos) << text.str();
  EXPECT_NE(r.output.find("| weak | 2 | 64 |"), std::string::npos) << "table not printed:\n" << r.output;
  if (run_command("command -v gnuplot").exit_code == 0) {
    std::ifstream png(out + "/scaling.png", std::ios::binary);
    char magic[8] = {};
    png.read(magic, 8);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << "no plot at " << out << "/scaling.png";
  }
}

TEST(ScalingScript, ABadArgumentStopsWithAMessage) {
  const std::string script = kSource + "/cluster/scaling/scaling.sh ";
  CommandResult r = run_command(script + kSource + "/configs/no_such.yaml --dptrain " + DPTRAIN_BINARY);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no_such.yaml: no such file"), std::string::npos) << r.output;
  r = run_command(script + kSmoke + " --dptrain " + DPTRAIN_BINARY + " --mode sideways");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--mode sideways"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
