// The dptrain binary under mpirun, as a user runs it: the world print, one progress stream,
// per-rank logs, global metrics, the all-reduce benchmark, and errors that end the whole job.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
using test_util::kMpirun;
using test_util::read_file;

using e2e::CommandResult;
using e2e::run_command;

std::string temp_dir(const std::string& name) { return test_util::temp_dir("dptrain_mpi_e2e", name); }

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(MpiEndToEnd, TwoWorkersTrainWithOneProgressStreamAndALogPerRank) {
  const std::string dir = temp_dir("train");
  const CommandResult r = run_command(kMpirun + "-np 2 " + DPTRAIN_BINARY + " train " + kSmoke + " --progress off --log-dir " +
                              dir + "/logs --metrics " + dir + "/metrics.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("world: 2 workers on 1 host (mpi)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1  host "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("local rank 1/2"), std::string::npos) << r.output;
  // Rank 0 alone prints: each epoch line appears once.
  EXPECT_EQ(count(r.output, "epoch 3/3 "), 1u) << r.output;
  EXPECT_EQ(count(r.output, "done: 3 epochs"), 1u) << r.output;
  for (int rank : {0, 1}) {
    const std::string log = read_file(dir + "/logs/rank-" + std::to_string(rank) + ".log");
    EXPECT_NE(log.find("world: 2 workers"), std::string::npos) << "rank " << rank << ":\n" << log;
    EXPECT_NE(log.find("epoch 3: rank " + std::to_string(rank) + " trained 32 steps"), std::string::npos)
        << "rank " << rank << ":\n" << log;
  }
  const std::string metrics = read_file(dir + "/metrics.jsonl");
  EXPECT_EQ(count(metrics, "\"event\": \"epoch\""), 3u) << metrics;
  EXPECT_EQ(count(metrics, "\"world_size\": 2"), 5u) << metrics;  // start, 3 epochs, end
  EXPECT_NE(metrics.find("\"comm_wait_seconds\""), std::string::npos) << metrics;
}

TEST(MpiEndToEnd, TheResultDoesNotDependOnTheNumberOfWorkers) {
  // The epoch line (losses and accuracies, 4 decimals) is the same for 1 and 3 workers. Bit for bit
  // with train.reproducible; without it the float sums' order differs and the fourth decimal may too.
  auto final_line = [](const std::string& output) {
    const size_t at = output.find("epoch 3/3 ");
    return at == std::string::npos ? std::string("(missing)") : output.substr(at, output.find("img/s", at) - at);
  };
  auto strip_speed = [](std::string line) { return line.substr(0, line.rfind("test_acc") + 16); };
  const std::string exact = " --progress off --set train.reproducible=true";
  const CommandResult one = run_command(kMpirun + "-np 1 " + DPTRAIN_BINARY + " train " + kSmoke + exact);
  const CommandResult three = run_command(kMpirun + "-np 3 " + DPTRAIN_BINARY + " train " + kSmoke + exact);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(three.exit_code, 0) << three.output;
  EXPECT_EQ(strip_speed(final_line(one.output)), strip_speed(final_line(three.output)))
      << one.output << "\n----\n" << three.output;
}

TEST(MpiEndToEnd, WorkersWithDifferentConfigsStopWithAMessageInsteadOfHanging) {
  const CommandResult r = run_command(kMpirun + "-np 1 " + DPTRAIN_BINARY + " train " + kSmoke + " --progress off : -np 1 " +
                              DPTRAIN_BINARY + " train " + kSmoke + " --progress off --set train.epochs=4");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out:\n" << r.output;
  EXPECT_NE(r.output.find("differs from rank 0"), std::string::npos) << r.output;
}

TEST(MpiEndToEnd, AFailingRankEndsTheWholeJobPromptly) {
  // Rank 1 cannot read its data; rank 0 would otherwise wait for it at the first collective.
  const std::string dir = temp_dir("fail");
  const CommandResult r = run_command(kMpirun + "-np 1 " + DPTRAIN_BINARY + " train " + kSmoke + " --progress off : -np 1 " +
                              DPTRAIN_BINARY + " train " + kSmoke +
                              " --progress off --set data.type=idx --set data.dir=" + dir + "/missing");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out:\n" << r.output;
  EXPECT_NE(r.output.find("rank 1: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no such file"), std::string::npos) << r.output;
}

TEST(MpiEndToEnd, BenchAllreducePrintsBandwidthForEverySize) {
  const CommandResult r = run_command(kMpirun + "-np 2 " + DPTRAIN_BINARY + " bench allreduce --max-bytes 65536 --iterations 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* size : {"4096", "8192", "16384", "32768", "65536"}) {
    EXPECT_NE(r.output.find("\n" + std::string(8 - std::string(size).size(), ' ') + "    " + size + " "),
              std::string::npos)
        << size << "\n" << r.output;
  }
  EXPECT_NE(r.output.find("busbw"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("131072 "), std::string::npos) << "went past --max-bytes\n" << r.output;
}

TEST(MpiEndToEnd, BenchAllreduceAloneSaysItNeedsTwoWorkers) {
  const CommandResult r = run_command(std::string(DPTRAIN_BINARY) + " bench allreduce");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("mpirun -np 2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
