// The variable-size gather and the merged timeline over MPI: one file from every rank, one
// process track per rank, each bucket's all-reduce, clocks aligned by the barrier.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "comm/mpi/mpi_communicator.h"
#include "comm/reducer.h"
#include "comm/timeline_merge.h"
#include "runtime/core/errors.h"
#include "runtime/report/timeline.h"
#include "tests/json_value.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const Deadline kDeadline = std::chrono::seconds(60);

std::string pattern(size_t rank, size_t bytes) {
  std::string s(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>((i * 31 + rank * 7) % 251);
  return s;
}

TEST(MpiGatherBytes, EveryRanksBytesArriveAtTheRootInRankOrder) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  ASSERT_GE(comm.size(), 2u);
  // Rank 1 sends nothing; the others different amounts, zero bytes included.
  auto bytes_of = [](size_t r) { return r == 1 ? size_t{0} : 1000 * r + 17; };
  struct Round {
    size_t root;
    bool generic;  // the interface's own implementation (over all_gather) instead of MPI_Igatherv
  };
  for (const Round round : {Round{0, false}, Round{comm.size() - 1, false}, Round{comm.size() - 1, true}}) {
    const std::string mine = pattern(comm.rank(), bytes_of(comm.rank()));
    const std::vector<std::string> got = round.generic ? comm.Communicator::gather_bytes(mine, round.root, kDeadline)
                                                       : comm.gather_bytes(mine, round.root, kDeadline);
    if (comm.rank() != round.root) {
      EXPECT_TRUE(got.empty());
      continue;
    }
    ASSERT_EQ(got.size(), comm.size());
    for (size_t r = 0; r < comm.size(); ++r) {
      EXPECT_EQ(got[r], pattern(r, bytes_of(r))) << "rank " << r << (round.generic ? " (generic)" : "");
    }
  }
  EXPECT_THROW(comm.gather_bytes("x", comm.size(), kDeadline), CommError);
}

TEST(MpiTimeline, MergedFileHasATrackPerRankWithEveryBucketAndAlignedClocks) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  Timeline timeline;
  start_timeline(timeline, comm, kDeadline);
  timeline.add("mark", "test", TimelineTrack::Compute, Timeline::Clock::now(), Timeline::Clock::now());
  std::vector<float> grads(5000, 1.0f);
  GradientReducer reducer(comm, grads.data(), grads.size(), 1024 * sizeof(float), kDeadline);
  reducer.set_timeline(&timeline);
  const size_t steps = 3;
  for (size_t s = 0; s < steps; ++s) {
    std::fill(grads.begin(), grads.end(), 1.0f);
    TimelineSpan step(&timeline, "step", "train");
    step.arg("step", static_cast<double>(s));
    reducer.begin_step();
    for (size_t end = grads.size(); end > 0; end = end > 700 ? end - 700 : 0) {
      reducer.ready(end > 700 ? end - 700 : 0, end);
    }
    reducer.finish();
  }
  EXPECT_EQ(grads[0], static_cast<float>(comm.size()));
  const std::string dir = std::filesystem::temp_directory_path() / ("dptrain_timeline_mpi_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/timeline.json";  // only rank 0's path is used
  const size_t written = write_merged_timeline(timeline, comm, path, kDeadline);
  if (comm.rank() != 0) {
    EXPECT_EQ(written, 0u);
    std::filesystem::remove_all(dir);
    return;
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  testing::JsonValue trace;
  ASSERT_NO_THROW(trace = testing::parse_json(text.str())) << text.str().substr(0, 2000);
  const size_t buckets = reducer.buckets().size();
  std::vector<size_t> marks(comm.size()), steps_seen(comm.size()), all_reduces(comm.size()), waits(comm.size());
  std::vector<double> mark_ts(comm.size(), -1);
  std::vector<std::string> process_names(comm.size());
  size_t x_events = 0;
  for (const auto& e : trace["traceEvents"].array) {
    ASSERT_GE(e["pid"].number, 1) << "rank r is process r + 1";
    const size_t pid = static_cast<size_t>(e["pid"].number) - 1;
    ASSERT_LT(pid, comm.size());
    if (e["ph"].string == "M" && e["name"].string == "process_name") process_names[pid] = e["args"]["name"].string;
    if (e["ph"].string != "X") continue;
    ++x_events;
    const std::string name = e["name"].string;
    if (name == "mark") mark_ts[pid] = e["ts"].number;
    if (name == "step") ++steps_seen[pid];
    if (name == "all-reduce wait") ++waits[pid];
    if (name == "all-reduce") {
      ++all_reduces[pid];
      EXPECT_EQ(e["tid"].number, 2);
      EXPECT_LT(e["args"]["bucket"].number, static_cast<double>(buckets));
      EXPECT_GT(e["args"]["bytes"].number, 0);
    }
  }
  EXPECT_EQ(x_events, written);
  for (size_t r = 0; r < comm.size(); ++r) {
    EXPECT_EQ(process_names[r].rfind("rank " + std::to_string(r) + " (", 0), 0u) << process_names[r];
    EXPECT_EQ(steps_seen[r], steps) << "rank " << r;
    EXPECT_EQ(waits[r], steps) << "rank " << r;
    EXPECT_EQ(all_reduces[r], steps * buckets) << "rank " << r;
    // Every rank took its origin right after the same barrier.
    EXPECT_GE(mark_ts[r], 0) << "rank " << r;
    EXPECT_LT(mark_ts[r], 500000) << "rank " << r << " more than 0.5 s off";
  }
  EXPECT_EQ(trace["ranks"].array.size(), comm.size());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dptrain
