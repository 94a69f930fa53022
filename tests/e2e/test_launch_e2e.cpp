// The supervisor, `dptrain launch`, as a user runs it: a job that completes in one launch; a worker
// killed mid-epoch and the run finishing after a relaunch with the parameters of an uninterrupted
// run; giving up when no restart is left or too few slots remain; a hostfile with fewer slots than
// --np; SIGTERM to the supervisor stopping the job with a checkpoint; a config without checkpoint.dir.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/background.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::run_command;
using e2e::Background;
using test_util::final_parameters;
using test_util::kMpiEnv;
using test_util::read_file;
using test_util::relative_difference;
using test_util::TempDir;
using test_util::wait_for_checkpoint;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
const std::string kLaunch = kMpiEnv + "timeout 120 " + kBinary + " launch ";
// For supervise(), which bounds its own wait: signals sent to it reach the supervisor itself.
const std::string kLaunchInBackground = kMpiEnv + kBinary + " launch ";
// Options for every launch here: one thread per worker, short pauses; after `--`, mpirun's own.
const std::string kOneThread = " --set threads=1 --progress plain";
const std::string kQuick = kOneThread + " --restart-delay 0.2";
const std::string kMpirunArgs = " -- --oversubscribe --bind-to none";
// Two epochs of about a second each, so that a signal sent after the first lands inside the second.
const std::string kLong = " --set data.train_samples=120000 --set train.epochs=2";
// A killed worker is named by the others after 5 s without heartbeats.
const std::string kDetect = " --set comm.heartbeat_seconds=5 --set comm.timeout_seconds=20";

// A supervisor started in the background. If the test ends early, it is asked twice to stop (which
// ends its job) and then killed.
Background supervise(const std::string& command, const std::string& log) {
  return Background(command, log, {SIGTERM, SIGTERM}, 20);
}

// The pid of worker `rank` as the first launch's rank 0 logged it ("  rank 1  host vm ... pid 123").
pid_t worker_pid(const std::string& log_dir, size_t rank) {
  std::ifstream log(log_dir + "/rank-0.log");
  std::string line;
  const std::string prefix = "  rank " + std::to_string(rank) + " ";
  while (std::getline(log, line)) {
    const size_t pid = line.find(" pid ");
    if (line.rfind(prefix, 0) == 0 && pid != std::string::npos) return std::stoi(line.substr(pid + 5));
  }
  return -1;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Launch, JobThatSucceedsRunsOnce) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt"), metrics = tmp.file("metrics.jsonl");
  const auto run = run_command(kLaunch + "--np 2 " + kSmoke + kQuick + " --set checkpoint.dir=" + dir + " --metrics " +
                               metrics + kMpirunArgs);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("launch 1/4: 2 worker(s) (--np), starting from the beginning"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("completed after 1 launch(es) (0 restart(s))"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("launch 2/"), std::string::npos) << run.output;
  EXPECT_EQ(read_file(dir + "/launch-status"), "completed\n");
  ASSERT_FALSE(list_checkpoints(dir).empty());
  EXPECT_EQ(list_checkpoints(dir)[0].epoch, 3u);
  const std::string records = read_file(metrics);
  EXPECT_EQ(count(records, "\"event\": \"launch\""), 1u) << records;
  EXPECT_NE(records.find("\"event\": \"end\""), std::string::npos) << records;
  EXPECT_NE(records.find("\"event\": \"supervisor_end\", \"outcome\": \"completed\""), std::string::npos) << records;
  // Launched again on the same folder it resumes (--resume auto), so a checkpoint of another run is
  // refused by the job, and the supervisor does not retry what would fail the same way.
  const auto other = run_command(kLaunch + "--np 2 " + kSmoke + kQuick + " --set checkpoint.dir=" + dir +
                                 " --set seed=99" + kMpirunArgs);
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("refused: "), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("a relaunch would fail the same way: giving up"), std::string::npos) << other.output;
  EXPECT_EQ(other.output.find("launch 2/"), std::string::npos) << other.output;
}

TEST(Launch, WorkerKilledMidEpochIsRelaunchedFromTheCheckpointAndEndsLikeAnUninterruptedRun) {
  TempDir tmp;
  // The same two workers uninterrupted: a relaunch on as many workers continues bit for bit (on
  // another number it would agree only up to summation order, which thousands of steps amplify).
  const auto reference = run_command(test_util::kMpirun + "-np 2 " + kBinary + " train " + kSmoke + kLong + kOneThread +
                                     " --set checkpoint.dir=" + tmp.file("reference"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  const std::string dir = tmp.file("ckpt"), logs = tmp.file("logs");
  Background supervisor = supervise(kLaunchInBackground + "--np 2 --max-restarts 2 " + kSmoke + kLong + kQuick + kDetect +
                            " --set checkpoint.dir=" + dir + " --log-dir " + logs + kMpirunArgs,
                        tmp.file("launch.log"));
  ASSERT_TRUE(wait_for_checkpoint(dir, 1, 60)) << supervisor.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // into the second epoch
  const pid_t victim = worker_pid(logs, 1);
  ASSERT_GT(victim, 0) << read_file(logs + "/rank-0.log");
  ASSERT_EQ(kill(victim, SIGKILL), 0);

  ASSERT_EQ(supervisor.wait(90), 0) << supervisor.output();
  const std::string out = supervisor.output();
  EXPECT_NE(out.find("launch 1 ended after"), std::string::npos) << out;
  EXPECT_NE(out.find(": failed: "), std::string::npos) << out;  // rank 0 reported the lost worker
  EXPECT_NE(out.find("launch 2/3: 2 worker(s) (--np), resuming from " + dir + "/ckpt-e000001-"), std::string::npos)
      << out;
  EXPECT_NE(out.find("completed after 2 launch(es) (1 restart(s))"), std::string::npos) << out;
  const std::vector<float> expected = final_parameters(tmp.file("reference"));
  const std::vector<float> got = final_parameters(dir);
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_LT(relative_difference(expected, got), 1e-4);
}

TEST(Launch, GivesUpWhenNoRestartIsLeftAndKeepsTheCheckpoints) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt"), logs = tmp.file("logs");
  Background supervisor = supervise(kLaunchInBackground + "--np 2 --max-restarts 0 " + kSmoke + kLong + kQuick + kDetect +
                            " --set checkpoint.dir=" + dir + " --log-dir " + logs + kMpirunArgs,
                        tmp.file("launch.log"));
  ASSERT_TRUE(wait_for_checkpoint(dir, 1, 60)) << supervisor.output();
  const pid_t workers[] = {worker_pid(logs, 0), worker_pid(logs, 1)};
  for (pid_t pid : workers) {
    ASSERT_GT(pid, 0);
    kill(pid, SIGKILL);  // the whole job gone at once: nobody reports a status
  }
  ASSERT_EQ(supervisor.wait(60), 1) << supervisor.output();
  const std::string out = supervisor.output();
  EXPECT_NE(out.find("launch 1 ended after"), std::string::npos) << out;
  EXPECT_NE(out.find("no status"), std::string::npos) << out;
  EXPECT_NE(out.find("no restarts left (--max-restarts 0): giving up"), std::string::npos) << out;
  EXPECT_EQ(out.find("launch 2/"), std::string::npos) << out;
  const std::vector<CheckpointFile> files = list_checkpoints(dir);
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(read_checkpoint(files[0].path, CheckpointContents::Header).epoch, 1u);  // verifies and reads
}

TEST(Launch, HostfileWithFewerSlotsThanRequestedLaunchesFewerWorkersOrRefusesBelowMinNp) {
  TempDir tmp;
  const std::string hostfile = tmp.file("hosts");
  std::ofstream(hostfile) << "# one slot left\nlocalhost slots=1\n";
  const std::string dir = tmp.file("ckpt");
  const auto run = run_command(kLaunch + "--np 2 --hostfile " + hostfile + " " + kSmoke + kQuick +
                               " --set checkpoint.dir=" + dir + " -- --bind-to none");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("launch 1/4: 1 worker(s) (hostfile " + hostfile + ": 1 host(s), 1 slot(s))"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("world: 1 worker on 1 host (mpi)"), std::string::npos) << run.output;
  EXPECT_EQ(read_file(dir + "/launch-status"), "completed\n");

  const auto refused = run_command(kLaunch + "--np 2 --min-np 2 --hostfile " + hostfile + " " + kSmoke + kQuick +
                                   " --set checkpoint.dir=" + tmp.file("other") + " -- --bind-to none");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("only 1 worker(s) can be placed"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("fewer than --min-np 2: giving up"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("launch 1/"), std::string::npos) << refused.output;
}

TEST(Launch, SigtermToTheSupervisorStopsTheJobWithACheckpointAndDoesNotRelaunch) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  Background supervisor = supervise(kLaunchInBackground + "--np 2 " + kSmoke + kLong + kQuick + " --set checkpoint.dir=" + dir +
                            " --set checkpoint.keep=10" + kMpirunArgs,
                        tmp.file("launch.log"));
  ASSERT_TRUE(wait_for_checkpoint(dir, 1, 60)) << supervisor.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(supervisor.pid(), SIGTERM);
  ASSERT_EQ(supervisor.wait(60), 0) << supervisor.output();
  const std::string out = supervisor.output();
  EXPECT_NE(out.find("SIGTERM: asking the workers to save a checkpoint and stop"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped by SIGUSR2 in epoch 2 after step "), std::string::npos) << out;
  EXPECT_NE(out.find("launch 1 ended after"), std::string::npos) << out;
  EXPECT_EQ(out.find("launch 2/"), std::string::npos) << out;
  EXPECT_EQ(read_file(dir + "/launch-status"), "stopped SIGUSR2\n");
  bool inside_an_epoch = false;
  for (const CheckpointFile& f : list_checkpoints(dir)) {
    inside_an_epoch |= read_checkpoint(f.path, CheckpointContents::Header).step_in_epoch > 0;
  }
  EXPECT_TRUE(inside_an_epoch);
}

// A stand-in for mpirun that records its command line and acts out one line of `plan` per call:
// "STATUS" writes the job's status, "shrink:STATUS" also cuts the hostfile to one slot,
// "hang:STATUS" writes it and then never exits (a worker stuck in MPI_Finalize).
std::string write_fake_mpirun(const TempDir& tmp, const std::string& plan) {
  std::ofstream(tmp.file("plan")) << plan;
  const std::string path = tmp.file("fake-mpirun");
  std::ofstream(path)
      << "#!/bin/sh\n"
         "dir=$(dirname \"$0\")\n"
         "echo \"$@\" >> \"$dir/calls\"\n"
         "action=$(sed -n \"$(wc -l < \"$dir/calls\")p\" \"$dir/plan\")\n"
         "prev=; for a in \"$@\"; do [ \"$prev\" = --exit-status ] && status=$a; prev=$a; done\n"
         "case \"$action\" in\n"
         "  shrink:*) echo 'localhost slots=1' > \"$dir/hosts\"; echo \"${action#shrink:}\" > \"$status\";;\n"
         "  hang:*) echo \"${action#hang:}\" > \"$status\"; exec sleep 60;;\n"
         "  *) echo \"$action\" > \"$status\";;\n"
         "esac\n";
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

TEST(Launch, RelaunchesWithTheSlotsLeftInTheHostfileAndEndsAnMpirunThatOutlivesItsJob) {
  TempDir tmp;
  const std::string mpirun = write_fake_mpirun(tmp, "shrink:failed: rank 1 lost\nhang:completed\n");
  std::ofstream(tmp.file("hosts")) << "localhost slots=2 # two GPUs\n";
  const std::string dir = tmp.file("ckpt");
  const auto run = run_command(kLaunch + "--np 2 --hostfile " + tmp.file("hosts") + " --mpirun " + mpirun +
                               " --grace 1 " + kSmoke + kQuick + " --set checkpoint.dir=" + dir + " -- --bind-to none");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("launch 1 ended after"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("failed: rank 1 lost"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("launch 2/4: 1 worker(s) (hostfile " + tmp.file("hosts") + ": 1 host(s), 1 slot(s))"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("mpirun still runs 1 s after the job reported \"completed\""), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("completed after 2 launch(es) (1 restart(s))"), std::string::npos) << run.output;
  const std::string calls = read_file(tmp.file("calls"));
  const std::string program = " train " + kSmoke + " --resume auto --exit-status " + dir + "/launch-status";
  EXPECT_NE(calls.find("--enable-recovery -np 2 --hostfile " + tmp.file("hosts") + " --bind-to none "),
            std::string::npos)
      << calls;
  EXPECT_NE(calls.find("--enable-recovery -np 1 --hostfile "), std::string::npos) << calls;
  EXPECT_EQ(count(calls, program), 2u) << calls;
}

TEST(Launch, JobThatRefusesItsConfigIsNotRelaunched) {
  TempDir tmp;
  const std::string mpirun =
      write_fake_mpirun(tmp, "refused: ckpt-e000001.h5: was written with seed 7, but this run has 99\n");
  const auto run = run_command(kLaunch + "--np 2 --mpirun " + mpirun + " " + kSmoke + kQuick +
                               " --set checkpoint.dir=" + tmp.file("ckpt"));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("a relaunch would fail the same way: giving up"), std::string::npos) << run.output;
  EXPECT_EQ(count(read_file(tmp.file("calls")), "--enable-recovery"), 1u);
}

TEST(Launch, InsideASlurmAllocationTakesTheSlotsFromTheEnvironment) {
  TempDir tmp;
  const std::string mpirun = write_fake_mpirun(tmp, "completed\ncompleted\n");
  const std::string rest = "--np 4 --mpirun " + mpirun + " " + kSmoke + " --set checkpoint.dir=" + tmp.file("ckpt");
  const auto ntasks = run_command("env SLURM_JOB_ID=77 SLURM_NTASKS=3 " + kLaunch + rest);
  ASSERT_EQ(ntasks.exit_code, 0) << ntasks.output;
  EXPECT_NE(ntasks.output.find("launch 1/4: 3 worker(s) (Slurm allocation 77: SLURM_NTASKS=3)"), std::string::npos)
      << ntasks.output;
  const auto per_node =
      run_command("env -u SLURM_NTASKS SLURM_JOB_ID=78 'SLURM_TASKS_PER_NODE=1(x2),1' " + kLaunch + rest);
  ASSERT_EQ(per_node.exit_code, 0) << per_node.output;
  EXPECT_NE(per_node.output.find("launch 1/4: 3 worker(s) (Slurm allocation 78: SLURM_TASKS_PER_NODE=1(x2),1)"),
            std::string::npos)
      << per_node.output;
  const std::string calls = read_file(tmp.file("calls"));
  EXPECT_EQ(count(calls, "--enable-recovery -np 3 "), 2u) << calls;
}

// An elastic job: the supervisor runs ompi-server for the joiners (and stops it at the end), and
// mpirun gets --ompi-server and waiting workers that yield their cores, unless the user set that.
TEST(Launch, ElasticJobGetsANameServerAndWorkersThatYieldTheirCores) {
  TempDir tmp;
  const std::string mpirun = write_fake_mpirun(tmp, "completed\ncompleted\n");
  const std::string dir = tmp.file("ckpt");
  const std::string rest = "--np 2 --mpirun " + mpirun + " " + kSmoke + " --set checkpoint.dir=" + dir +
                           " --set elastic.enabled=true";
  const auto run = run_command(kLaunch + rest);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const size_t at = run.output.find("ompi-server (pid ");
  ASSERT_NE(at, std::string::npos) << run.output;
  const pid_t server = static_cast<pid_t>(std::stol(run.output.substr(at + 17)));
  EXPECT_NE(kill(server, 0), 0) << "ompi-server " << server << " still runs";
  const auto chosen = run_command("env OMPI_MCA_mpi_yield_when_idle=0 " + kLaunch + rest);
  ASSERT_EQ(chosen.exit_code, 0) << chosen.output;
  const std::string calls = read_file(tmp.file("calls"));
  const std::string server_option = "--ompi-server file:" + dir + "/ompi-server.uri ";
  EXPECT_EQ(count(calls, server_option), 2u) << calls;
  EXPECT_EQ(count(calls, server_option + "--mca mpi_yield_when_idle 1 "), 1u) << calls;
}

TEST(Launch, MistakesAreRefusedBeforeAnythingStarts) {
  const auto no_dir = run_command(kLaunch + "--np 2 " + kSmoke + kMpirunArgs);
  EXPECT_EQ(no_dir.exit_code, 1) << no_dir.output;
  EXPECT_NE(no_dir.output.find("dptrain launch needs checkpoint.dir"), std::string::npos) << no_dir.output;
  EXPECT_NE(no_dir.output.find("--set checkpoint.dir=DIR"), std::string::npos) << no_dir.output;
  EXPECT_EQ(no_dir.output.find("launch 1/"), std::string::npos) << no_dir.output;

  TempDir tmp;
  const auto min_above = run_command(kLaunch + "--np 2 --min-np 3 " + kSmoke + " --set checkpoint.dir=" + tmp.path());
  EXPECT_EQ(min_above.exit_code, 1) << min_above.output;
  EXPECT_NE(min_above.output.find("--min-np 3 must be between 1 and --np (2)"), std::string::npos) << min_above.output;

  const auto no_mpirun =
      run_command(kLaunch + "--np 2 --mpirun /nonexistent/mpirun " + kSmoke + " --set checkpoint.dir=" + tmp.path());
  EXPECT_EQ(no_mpirun.exit_code, 1) << no_mpirun.output;
  EXPECT_NE(no_mpirun.output.find("/nonexistent/mpirun: not found"), std::string::npos) << no_mpirun.output;
}

}  // namespace
}  // namespace dptrain
