// `dptrain train --timeline` as a user runs it: one valid Chrome-trace file with a track per rank
// and every step's phases, each bucket's all-reduce and evaluation; a bad path fails before training.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "tests/e2e/run_command.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";
using test_util::kMpirun;
constexpr size_t kSteps = 32;  // 2048 samples at batch 64, one epoch

using e2e::CommandResult;
using e2e::run_command;
using testing::JsonValue;

std::string temp_dir(const std::string& name) { return test_util::temp_dir("dptrain_timeline_e2e", name); }

JsonValue read_trace(const std::string& path) { return testing::parse_json(test_util::read_file(path)); }

// Per rank: how many "X" events of each name, and whether each compute phase of a training step
// lies inside one of that rank's "step" events.
struct RankEvents {
  std::map<std::string, size_t> count;
  std::vector<std::pair<double, double>> steps;  // [ts, ts + dur]
  std::vector<std::pair<double, double>> phases;  // optimizer, backward, all-reduce wait
  std::string process_name;
  std::map<int, std::string> thread_names;
  std::set<double> buckets;
};

std::map<size_t, RankEvents> by_rank(const JsonValue& trace) {
  std::map<size_t, RankEvents> ranks;
  for (const JsonValue& e : trace["traceEvents"].array) {
    EXPECT_GE(e["pid"].number, 1) << "rank r is process r + 1";
    RankEvents& r = ranks[static_cast<size_t>(e["pid"].number) - 1];
    const std::string& name = e["name"].string;
    if (e["ph"].string == "M") {
      if (name == "process_name") r.process_name = e["args"]["name"].string;
      if (name == "thread_name") r.thread_names[static_cast<int>(e["tid"].number)] = e["args"]["name"].string;
      continue;
    }
    if (e["ph"].string != "X") continue;
    ++r.count[name];
    const std::pair<double, double> span{e["ts"].number, e["ts"].number + e["dur"].number};
    if (name == "step") r.steps.push_back(span);
    if (name == "optimizer" || name == "backward" || name == "all-reduce wait") r.phases.push_back(span);
    if (name == "all-reduce") {
      EXPECT_EQ(e["tid"].number, 2) << "bucket all-reduces belong on the all-reduce track";
      EXPECT_GT(e["args"]["bytes"].number, 0);
      r.buckets.insert(e["args"]["bucket"].number);
    }
    if (name == "data wait") EXPECT_EQ(e["tid"].number, 3);
  }
  return ranks;
}

bool inside_a_step(const RankEvents& r, const std::pair<double, double>& phase) {
  for (const auto& s : r.steps) {
    if (s.first <= phase.first + 1e-3 && phase.second <= s.second + 1e-3) return true;
  }
  return false;
}

TEST(TimelineEndToEnd, TwoWorkersWriteOneTraceWithATrackPerRankAndEveryPhase) {
  const std::string dir = temp_dir("two");
  const std::string path = dir + "/timeline.json";
  // Small buckets, so that every step has several all-reduces.
  const CommandResult r = run_command(kMpirun + "-np 2 " + DPTRAIN_BINARY + " train " + kSmoke +
                                      " --progress off --set train.epochs=1 --set comm.bucket_mb=0.01 --timeline " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("timeline: "), std::string::npos) << r.output;
  JsonValue trace;
  ASSERT_NO_THROW(trace = read_trace(path)) << "not valid JSON: " << path;
  EXPECT_EQ(trace["displayTimeUnit"].string, "ms");
  const auto ranks = by_rank(trace);
  ASSERT_EQ(ranks.size(), 2u);
  for (const auto& [rank, events] : ranks) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    EXPECT_EQ(events.process_name.rfind("rank " + std::to_string(rank) + " (", 0), 0u) << events.process_name;
    EXPECT_EQ(events.thread_names.at(1), "compute");
    EXPECT_EQ(events.thread_names.at(2), "all-reduce");
    EXPECT_EQ(events.thread_names.at(3), "data");
    const std::map<std::string, size_t>& n = events.count;
    for (const char* per_step : {"step", "backward", "optimizer", "data wait", "all-reduce wait", "metrics all-reduce"}) {
      EXPECT_EQ(n.count(per_step) ? n.at(per_step) : 0, kSteps) << per_step;
    }
    EXPECT_GE(n.at("forward"), kSteps + 1);  // and at least one evaluation batch
    EXPECT_EQ(n.at("evaluate"), 1u);
    EXPECT_EQ(n.at("conv2d"), 2 * kSteps + (n.at("forward") - kSteps));  // forward and backward of each step
    // 0.01 MiB buckets cut the smoke model's gradients into several pieces, all reduced every step.
    ASSERT_GE(events.buckets.size(), 2u);
    EXPECT_EQ(n.at("all-reduce"), kSteps * events.buckets.size());
    for (const auto& phase : events.phases) EXPECT_TRUE(inside_a_step(events, phase)) << phase.first;
  }
  EXPECT_EQ(trace["ranks"].array.size(), 2u);
}

TEST(TimelineEndToEnd, OneWorkerWithoutMpirunWritesItsOwnTrack) {
  const std::string path = temp_dir("one") + "/t.json";
  const CommandResult r = run_command(std::string("OMP_NUM_THREADS=1 timeout 120 ") + DPTRAIN_BINARY + " train " + kSmoke +
                                      " --progress off --set train.epochs=1 --timeline " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ranks = by_rank(read_trace(path));
  ASSERT_EQ(ranks.size(), 1u);
  const RankEvents& events = ranks.at(0);
  EXPECT_EQ(events.count.at("step"), kSteps);
  EXPECT_EQ(events.count.count("all-reduce"), 0u) << "one worker has nothing to all-reduce";
}

TEST(TimelineEndToEnd, AnUnwritablePathFailsBeforeTrainingAndNamesThePath) {
  const std::string path = temp_dir("bad") + "/missing/folder/t.json";
  const CommandResult r = run_command(std::string("timeout 120 ") + DPTRAIN_BINARY + " train " + kSmoke +
                                      " --progress off --timeline " + path);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--timeline " + path), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("epoch 1/"), std::string::npos) << "trained before failing:\n" << r.output;
}

}  // namespace
}  // namespace dptrain
