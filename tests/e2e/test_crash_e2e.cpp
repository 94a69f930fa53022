// A worker killed with SIGKILL in the middle of an epoch never hangs the others. Under
// `mpirun --enable-recovery` (where mpirun lets the job run on) every survivor names the dead rank,
// by pid and host, and exits within seconds through the heartbeats, and mpirun ends with them; rank 0
// writes no checkpoint after the loss. Under plain mpirun, mpirun itself ends the job at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/background.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using Clock = std::chrono::steady_clock;
using e2e::Background;
using test_util::kMpiEnv;
using test_util::read_file;
using test_util::TempDir;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
// Epochs of about a second on three workers, many of them: the job is far from done at the kill.
const std::string kLongRun =
    " --set data.train_samples=100000 --set threads=1 --set train.epochs=50 --set comm.heartbeat_seconds=2 "
    "--progress plain";
constexpr double kLimitSeconds = 30;  // the issue's bound from the kill to every survivor's exit

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// True while `pid` runs (a zombie waiting for its parent counts as ended).
bool running(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

// Every rank's pid, from the world description in rank 0's log; waits up to `seconds` for it.
std::map<size_t, pid_t> rank_pids(const std::string& log, size_t ranks, double seconds) {
  const std::regex line(R"(rank (\d+)\s+host \S+.*pid (\d+))");
  const auto start = Clock::now();
  std::map<size_t, pid_t> pids;
  while (pids.size() < ranks && seconds_since(start) < seconds) {
    const std::string text = read_file(log);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator(); ++it) {
      pids[std::stoul((*it)[1])] = static_cast<pid_t>(std::stol((*it)[2]));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pids;
}

bool wait_for_checkpoint(const std::string& dir, Background& job, double seconds) {
  const auto start = Clock::now();
  while (seconds_since(start) < seconds && !job.finished()) {
    if (std::filesystem::exists(dir) && !list_checkpoints(dir).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Starts 3 workers under `mpirun_options`, SIGKILLs rank 2 inside the second epoch and returns how
// long each of the others and mpirun took to end after the kill ({0, 1, mpirun}; -1: not within the limit).
struct Outcome {
  std::map<std::string, double> seconds;
  pid_t killed = 0;
  int mpirun_exit = -2;
  std::string output;
};

Outcome kill_rank_two(const TempDir& tmp, const std::string& mpirun_options) {
  Outcome outcome;
  const std::string ckpt = tmp.file("ckpt"), logs = tmp.file("logs");
  // A job still running at the end is asked to stop (`timeout` passes SIGTERM on to mpirun, which
  // ends its ranks), then killed.
  Background job(kMpiEnv + "timeout 120 mpirun " + mpirun_options + " --oversubscribe --bind-to none -np 3 " +
                     kBinary + " train " + kSmoke + kLongRun + " --set checkpoint.dir=" + ckpt + " --log-dir " + logs,
                 tmp.file("mpirun.log"), {SIGTERM}, 5);
  const bool trained_an_epoch = wait_for_checkpoint(ckpt, job, 90);
  const std::map<size_t, pid_t> pids = rank_pids(logs + "/rank-0.log", 3, 10);
  if (!trained_an_epoch || pids.size() != 3) {
    ADD_FAILURE() << "the job did not get through its first epoch:\n" << job.output();
    return outcome;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the second epoch
  outcome.killed = pids.at(2);
  const auto kill_time = Clock::now();
  kill(outcome.killed, SIGKILL);
  while (seconds_since(kill_time) < kLimitSeconds && outcome.seconds.size() < 3) {
    for (const auto& [rank, pid] : pids) {
      const std::string name = std::to_string(rank);
      if (rank != 2 && !outcome.seconds.count(name) && !running(pid)) outcome.seconds[name] = seconds_since(kill_time);
    }
    if (!outcome.seconds.count("mpirun") && job.finished()) outcome.seconds["mpirun"] = seconds_since(kill_time);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const char* name : {"0", "1", "mpirun"}) {
    if (!outcome.seconds.count(name)) outcome.seconds[name] = -1;
  }
  // Bounded even if mpirun hung: ~Background kills it.
  outcome.mpirun_exit = job.wait(5);
  outcome.output = job.output();
  for (const auto& [rank, pid] : pids) {
    if (running(pid)) kill(pid, SIGKILL);  // a survivor that hung must not outlive the test
  }
  std::printf("SIGKILL of rank 2 (mpirun %s): rank 0 ended after %.2f s, rank 1 after %.2f s, mpirun after %.2f s\n",
              mpirun_options.empty() ? "plain" : mpirun_options.c_str(), outcome.seconds["0"], outcome.seconds["1"],
              outcome.seconds["mpirun"]);
  return outcome;
}

TEST(CrashEndToEnd, UnderEnableRecoveryEverySurvivorNamesTheKilledRankAndExits) {
  TempDir tmp;
  const Outcome o = kill_rank_two(tmp, "--enable-recovery");
  ASSERT_NE(o.killed, 0);
  for (const char* name : {"0", "1", "mpirun"}) {
    EXPECT_GE(o.seconds.at(name), 0) << name << " still ran " << kLimitSeconds << " s after the kill:\n" << o.output;
  }
  const std::string named = "worker rank 2 (pid " + std::to_string(o.killed) + " on host ";
  for (const char* rank : {"0", "1"}) {
    const std::string message = "dptrain: rank " + std::string(rank) + ": error: " + named;
    EXPECT_NE(o.output.find(message), std::string::npos) << "rank " << rank << " did not name rank 2:\n" << o.output;
    EXPECT_NE(read_file(tmp.file("logs/rank-" + std::string(rank) + ".log")).find(named), std::string::npos);
  }
  EXPECT_NE(o.output.find("stopped answering: no heartbeat for "), std::string::npos) << o.output;
  // Rank 0 saved nothing after the loss: every checkpoint is one of an epoch's end.
  for (const CheckpointFile& f : list_checkpoints(tmp.file("ckpt"))) {
    EXPECT_EQ(read_checkpoint(f.path, CheckpointContents::Header).step_in_epoch, 0u) << f.path;
  }
}

TEST(CrashEndToEnd, UnderPlainMpirunTheJobEndsAtOnce) {
  TempDir tmp;
  const Outcome o = kill_rank_two(tmp, "");
  ASSERT_NE(o.killed, 0);
  EXPECT_GE(o.seconds.at("mpirun"), 0) << o.output;
  EXPECT_LT(o.seconds.at("mpirun"), 10) << o.output;
  EXPECT_NE(o.mpirun_exit, 0) << o.output;
  for (const char* rank : {"0", "1"}) EXPECT_GE(o.seconds.at(rank), 0) << "rank " << rank << " outlived the job";
}

}  // namespace
}  // namespace dptrain
