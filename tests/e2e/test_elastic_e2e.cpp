// Elastic membership through the dptrain binary under mpirun --enable-recovery, with ompi-server
// between the job and its joiners, all on loopback: workers leave (SIGUSR1, dptrain ctl leave) and
// join (dptrain join) between epochs, the trajectory stays that of a fixed 2-worker run, the limits
// (elastic.min_workers, elastic.max_workers) hold, and a joiner that dies in its hand-over is given up.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "tests/e2e/elastic_run.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using e2e::ElasticRun;
using testing::JsonValue;
using test_util::final_parameters;
using test_util::read_file;
using test_util::relative_difference;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ElasticE2E, WorkersLeaveBySignalAndByCtlAndTheRestFinish) {
  ElasticRun run("elastic-leave", "{enabled: false}");
  auto job = run.start_job(3);
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 3; }, 60)) << job->output();
  // Rank 2 by SIGUSR1 (its pid from the members file), then rank 1 by ctl once rank 2 is gone.
  std::ifstream in(run.run_dir() + "/elastic/members");
  std::string header;
  std::getline(in, header);
  int rank = 0, pid = 0;
  std::string host;
  for (int r = 0; r <= 2; ++r) in >> rank >> host >> pid;
  ASSERT_EQ(rank, 2);
  ASSERT_EQ(kill(pid, SIGUSR1), 0);
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 2; }, 60)) << job->output();
  EXPECT_EQ(run.ctl("leave --rank 1"), 0);
  EXPECT_NE(run.ctl("leave --rank 0"), 0) << "rank 0 cannot leave";
  EXPECT_NE(run.ctl("leave --rank 7"), 0) << "no such rank";
  const int code = job->wait(120);
  const std::string out = job->output();
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("rank 2 (pid " + std::to_string(pid)), std::string::npos) << out;
  EXPECT_NE(out.find("1 worker(s) now"), std::string::npos) << out;
  EXPECT_NE(out.find("done: 4 epochs"), std::string::npos) << out;
  const std::string metrics = run.metrics();
  EXPECT_EQ(count(metrics, "\"change\": \"leave\""), 2u) << metrics;
  EXPECT_NE(metrics.find("\"world_size\": 1"), std::string::npos) << metrics;
}

TEST(ElasticE2E, TwoToThreeToTwoWorkersFollowsTheFixedTwoWorkerTrajectory) {
  ElasticRun fixed("elastic-fixed", "{enabled: false}");
  auto reference = fixed.start_job(2);
  ASSERT_EQ(reference->wait(120), 0) << reference->output();

  ElasticRun run("elastic-join", "{enabled: true, max_workers: 4}");
  const std::string out = run.two_three_two();
  EXPECT_NE(out.find("done: 4 epochs"), std::string::npos) << out;
  const std::string metrics = run.metrics();
  EXPECT_EQ(count(metrics, "\"change\": \"join\""), 1u) << metrics;
  EXPECT_EQ(count(metrics, "\"change\": \"leave\""), 1u) << metrics;

  const std::vector<float> a = final_parameters(run.run_dir()), b = final_parameters(fixed.run_dir());
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_LT(relative_difference(b, a), 1e-4);

}

// With --timeline, a worker that joins records from its hand-over on, one that leaves sends its
// events to rank 0 first, and the merged file has a track for every worker the run had.
TEST(ElasticE2E, TheTimelineHasATrackForEveryWorkerThatJoinedOrLeft) {
  constexpr size_t kSamples = 24000, kBatch = 200, kEpochs = 6, kStepsPerEpoch = kSamples / kBatch;
  ElasticRun run("elastic-timeline", "{enabled: true, max_workers: 3}", kSamples, kBatch, kEpochs);
  auto job = run.start_job(2, " --timeline " + run.path("timeline.json"));
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 2; }, 60)) << job->output();
  auto joiner = run.start_joiner(1, "joiner.log");
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 3; }, 60)) << job->output();
  EXPECT_EQ(run.ctl("leave --rank 2"), 0);
  ASSERT_EQ(job->wait(120), 0) << job->output();
  EXPECT_EQ(joiner->wait(30), 0) << joiner->output();
  const std::string out = job->output();
  ASSERT_NE(out.find("left after epoch"), std::string::npos) << out;
  EXPECT_NE(out.find("timeline: "), std::string::npos) << out;
  EXPECT_NE(out.find(" from 3 worker(s) in "), std::string::npos) << out;

  const JsonValue trace = testing::parse_json(read_file(run.path("timeline.json")));
  EXPECT_EQ(trace["otherData"]["world_size"].string, "2");
  EXPECT_EQ(trace["otherData"]["workers"].string, "3");
  std::map<int, std::string> names;
  std::map<int, std::vector<double>> steps;  // their start times
  for (const JsonValue& e : trace["traceEvents"].array) {
    const int pid = static_cast<int>(e["pid"].number);
    if (e["ph"].string == "M" && e["name"].string == "process_name") names[pid] = e["args"]["name"].string;
    if (e["ph"].string == "X" && e["name"].string == "step") steps[pid].push_back(e["ts"].number);
  }
  ASSERT_EQ(names.size(), 3u) << out;
  EXPECT_EQ(names[1].rfind("rank 0 (", 0), 0u) << names[1];
  EXPECT_EQ(names[2].rfind("rank 1 (", 0), 0u) << names[2];
  EXPECT_EQ(names[3].rfind("rank 2 (", 0), 0u) << names[3];
  EXPECT_NE(names[3].find(", joined after epoch "), std::string::npos) << names[3];
  EXPECT_NE(names[3].find(", left after epoch "), std::string::npos) << names[3];
  EXPECT_EQ(steps[1].size(), kEpochs * kStepsPerEpoch);
  EXPECT_EQ(steps[2].size(), kEpochs * kStepsPerEpoch);
  ASSERT_FALSE(steps[3].empty());
  EXPECT_LT(steps[3].size(), kEpochs * kStepsPerEpoch);
  EXPECT_EQ(steps[3].size() % kStepsPerEpoch, 0u) << "the joiner trains whole epochs";
  // On rank 0's clock: the joiner's first step comes after the others' first epoch.
  EXPECT_GT(steps[3].front(), steps[1][kStepsPerEpoch - 1]);
}

TEST(ElasticE2E, TwoJoinersComeInAndOneBeyondMaxWorkersIsRefused) {
  ElasticRun run("elastic-max", "{enabled: true, max_workers: 4}");
  auto job = run.start_job(2);
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 2; }, 60)) << job->output();
  auto two = run.start_joiner(2, "two.log");
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 4; }, 60)) << job->output();
  auto one_more = run.start_joiner(1, "refused.log");
  one_more->wait(60);  // exits 2, but mpirun --enable-recovery reports 0 whatever its ranks return
  EXPECT_NE(one_more->output().find("elastic.max_workers is 4"), std::string::npos) << one_more->output();
  EXPECT_EQ(job->wait(120), 0) << job->output();
  EXPECT_EQ(two->wait(30), 0) << two->output();
  EXPECT_NE(run.metrics().find("\"world_size\": 4"), std::string::npos) << run.metrics();
}

TEST(ElasticE2E, BelowMinWorkersWaitsThenCheckpointsAndStops) {
  ElasticRun run("elastic-min", "{enabled: true, min_workers: 2, wait_seconds: 2}");
  auto job = run.start_job(2);
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 2; }, 60)) << job->output();
  EXPECT_EQ(run.ctl("leave --rank 1"), 0);
  const int code = job->wait(120);
  const std::string out = job->output();
  EXPECT_EQ(code, 0) << "mpirun --enable-recovery exits 0 whatever its ranks return\n" << out;
  EXPECT_NE(out.find("below elastic.min_workers 2: waiting up to 2 s"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped because only 1 worker(s) remain"), std::string::npos) << out;
  EXPECT_NE(out.find("continue with --resume auto"), std::string::npos) << out;
  EXPECT_EQ(out.find("done: 4 epochs"), std::string::npos) << out;
  EXPECT_NE(run.metrics().find("\"reason\": \"only 1 worker(s) remain"), std::string::npos) << run.metrics();
  EXPECT_FALSE(list_checkpoints(run.run_dir()).empty());
}

TEST(ElasticE2E, AJoinerThatDiesInItsHandOverIsGivenUp) {
#ifndef DPTRAIN_FAULT_INJECTION
  GTEST_SKIP() << "dptrain was built without -DDPTRAIN_FAULT_INJECTION=ON, so it has no DPTRAIN_FAULT hook to make "
                  "the joiner die in its hand-over";
#endif
  ElasticRun run("elastic-fault", "{enabled: true}");
  auto job = run.start_job(2);
  ASSERT_TRUE(ElasticRun::wait_until([&] { return run.members() == 2; }, 60)) << job->output();
  auto joiner = run.start_joiner(1, "joiner.log", "DPTRAIN_FAULT=exit-in-handover ");
  const auto start = std::chrono::steady_clock::now();
  const int code = job->wait(120);
  const std::string out = job->output();
  EXPECT_EQ(code, 0) << out;
  joiner->wait(30);
  EXPECT_NE(out.find("failed during the hand-over"), std::string::npos) << out << joiner->output();
  EXPECT_NE(out.find("going on with 2 worker(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("done: 4 epochs"), std::string::npos) << out;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 100);
  EXPECT_NE(run.metrics().find("\"change\": \"join_failed\""), std::string::npos) << run.metrics();
}

}  // namespace
}  // namespace dptrain
