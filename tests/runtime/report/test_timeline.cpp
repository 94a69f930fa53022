// The timeline: spans and their arguments, the event cap, thread safety, the merged Chrome-trace
// file (parsed back as JSON), --timeline path checks, and the gradient reducer's bucket events.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "comm/communicator.h"
#include "comm/reducer.h"
#include "comm/timeline_merge.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/report/timeline.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::JsonValue;
using testing::parse_json;
using Clock = Timeline::Clock;

std::string temp_dir(const std::string& name) { return test_util::temp_dir("dptrain_timeline", name); }

using test_util::read_file;

// The "X" events of a parsed trace.
std::vector<const JsonValue*> complete_events(const JsonValue& trace) {
  std::vector<const JsonValue*> out;
  for (const JsonValue& e : trace["traceEvents"].array) {
    if (e["ph"].string == "X") out.push_back(&e);
  }
  return out;
}

TEST(Timeline, SpansNestAndCarryTheirArguments) {
  SingleProcessCommunicator comm;
  Timeline timeline;
  start_timeline(timeline, comm, std::chrono::seconds(1));
  {
    TimelineSpan outer(&timeline, "step", "train");
    outer.arg("step", 7).arg("epoch", 2);
    TimelineSpan inner(&timeline, "forward", "compute");
  }
  const std::vector<TimelineEvent> events = timeline.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_STREQ(events[0].name, "forward");  // the inner span ends first
  EXPECT_STREQ(events[1].name, "step");
  ASSERT_EQ(events[1].num_args, 2u);
  EXPECT_STREQ(events[1].args[0].first, "step");
  EXPECT_EQ(events[1].args[0].second, 7);
  EXPECT_LE(events[1].begin_ns, events[0].begin_ns);
  EXPECT_GE(events[1].begin_ns + events[1].duration_ns, events[0].begin_ns + events[0].duration_ns);
  EXPECT_GE(events[1].begin_ns, 0);
}

TEST(Timeline, EventsPastTheCapAreCountedAndNotedInTheFile) {
  SingleProcessCommunicator comm;
  Timeline timeline(3);
  start_timeline(timeline, comm, std::chrono::seconds(1));
  const auto t = Clock::now();
  for (int i = 0; i < 5; ++i) timeline.add("forward", "compute", TimelineTrack::Compute, t, t);
  EXPECT_EQ(timeline.size(), 3u);
  EXPECT_EQ(timeline.dropped(), 2u);
  const std::string path = temp_dir("cap") + "/t.json";
  EXPECT_EQ(write_merged_timeline(timeline, comm, path, std::chrono::seconds(5)), 3u);
  const JsonValue trace = parse_json(read_file(path));
  EXPECT_EQ(complete_events(trace).size(), 3u);
  bool noted = false;
  for (const JsonValue& e : trace["traceEvents"].array) {
    if (e["ph"].string == "i" && e["name"].string.find("2 later events of this rank dropped") != std::string::npos) {
      noted = true;
    }
  }
  EXPECT_TRUE(noted) << read_file(path);
  EXPECT_EQ(trace["ranks"].array.at(0)["dropped_events"].number, 2);
}

TEST(Timeline, ConcurrentRecordersLoseNoEvent) {
  SingleProcessCommunicator comm;
  Timeline timeline;
  start_timeline(timeline, comm, std::chrono::seconds(1));
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&timeline] {
      for (int i = 0; i < 1000; ++i) TimelineSpan span(&timeline, "all-reduce", "comm", TimelineTrack::AllReduce);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(timeline.size(), 4000u);
}

TEST(Timeline, MergedFileIsAChromeTraceWithNamedProcessAndThreads) {
  SingleProcessCommunicator comm;
  Timeline timeline;
  start_timeline(timeline, comm, std::chrono::seconds(1));
  const auto t0 = timeline.origin() + std::chrono::microseconds(1500);
  timeline.add("forward", "compute", TimelineTrack::Compute, t0, t0 + std::chrono::nanoseconds(2500),
               {{"step", 3}, {"scale", 0.25}});
  timeline.add("data wait", "data", TimelineTrack::Data, t0, t0 + std::chrono::microseconds(10));
  timeline.add("odd \"name\"\n", "compute", TimelineTrack::Compute, t0, t0);
  const std::string dir = temp_dir("merge");
  const std::string path = dir + "/trace.json";
  EXPECT_EQ(write_merged_timeline(timeline, comm, path, std::chrono::seconds(5)), 3u);
  const std::string text = read_file(path);
  JsonValue trace;
  ASSERT_NO_THROW(trace = parse_json(text)) << text;
  EXPECT_EQ(trace["displayTimeUnit"].string, "ms");
  EXPECT_EQ(trace["otherData"]["world_size"].string, "1");
  std::map<std::string, std::string> names;  // "process_name" / "thread_name <tid>" -> name
  for (const JsonValue& e : trace["traceEvents"].array) {
    if (e["ph"].string != "M") continue;
    EXPECT_EQ(e["pid"].number, 1) << "rank 0 is process 1";
    if (e["name"].string == "process_name") names["process"] = e["args"]["name"].string;
    if (e["name"].string == "thread_name") names["thread " + std::to_string(int(e["tid"].number))] = e["args"]["name"].string;
  }
  EXPECT_EQ(names["process"].rfind("rank 0 (", 0), 0u) << names["process"];
  EXPECT_EQ(names["thread 1"], "compute");
  EXPECT_EQ(names["thread 2"], "all-reduce");
  EXPECT_EQ(names["thread 3"], "data");
  const auto events = complete_events(trace);
  ASSERT_EQ(events.size(), 3u);
  const JsonValue& forward = *events[0];
  EXPECT_EQ(forward["name"].string, "forward");
  EXPECT_EQ(forward["cat"].string, "compute");
  EXPECT_EQ(forward["pid"].number, 1);
  EXPECT_EQ(forward["tid"].number, 1);
  EXPECT_NEAR(forward["ts"].number, 1500.0, 1e-9);
  EXPECT_NEAR(forward["dur"].number, 2.5, 1e-9);
  EXPECT_EQ(forward["args"]["step"].number, 3);
  EXPECT_EQ(forward["args"]["scale"].number, 0.25);
  EXPECT_EQ((*events[1])["tid"].number, 3);
  EXPECT_EQ((*events[2])["name"].string, "odd \"name\"\n");
  EXPECT_EQ(trace["ranks"].array.at(0)["events"].number, 3);
  EXPECT_GT(trace["ranks"].array.at(0)["start_unix_us"].number, 1.6e15);  // after 2020
  // Written by rename: no temporary file is left next to it.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST(TimelinePath, TheFileIsOwnerOnlyAndAPlantedSymlinkIsNotFollowed) {
  SingleProcessCommunicator comm;
  Timeline timeline;
  start_timeline(timeline, comm, std::chrono::seconds(1));
  const std::string dir = temp_dir("symlink");
  const std::string path = dir + "/trace.json";
  std::ofstream(dir + "/victim") << "precious\n";
  std::filesystem::create_symlink(dir + "/victim", path);
  std::filesystem::create_symlink(dir + "/victim", dir + "/.trace.json.tmp-" + std::to_string(::getpid()));
  check_timeline_path(path);
  write_merged_timeline(timeline, comm, path, std::chrono::seconds(5));
  EXPECT_EQ(read_file(dir + "/victim"), "precious\n");
  EXPECT_FALSE(std::filesystem::is_symlink(path));
  EXPECT_EQ(path_mode(path).value_or(0), 0600u);
}

TEST(TimelinePath, AMissingFolderOrAFolderIsRefusedWithThePath) {
  const std::string dir = temp_dir("path");
  try {
    check_timeline_path(dir + "/no/such/folder/t.json");
    FAIL() << "a path in a missing folder was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--timeline " + dir + "/no/such/folder/t.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("writable folder"), std::string::npos) << e.what();
  }
  try {
    check_timeline_path(dir);
    FAIL() << "a folder was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_timeline_path(dir + "/ok.json"));
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "the check left a file behind";
}

// A two-worker communicator whose all-reduces complete at once, each reporting that it ran for
// 1 ms starting 2 ms after the previous one (or, with timings off, reporting nothing).
class FakeTwoWorkers final : public Communicator {
 public:
  explicit FakeTwoWorkers(bool timings) : timings_(timings) {}
  const char* backend() const override { return "fake"; }
  size_t rank() const override { return 0; }
  size_t size() const override { return 2; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float*, size_t) override {
    struct Done final : CommRequest {
      CommTiming t;
      bool test() override { return true; }
      void wait(Deadline) override {}
      CommTiming timing() const override { return t; }
    };
    auto r = std::make_unique<Done>();
    if (timings_) {
      r->t.start = Clock::now() + std::chrono::milliseconds(2 * ++calls_);
      r->t.end = r->t.start + std::chrono::milliseconds(1);
    }
    return r;
  }
  void all_reduce_sum(double*, size_t, Deadline) override {}
  void broadcast(void*, size_t, size_t, Deadline) override {}
  void barrier(Deadline) override {}
  void all_gather(const void*, size_t, void*, Deadline) override {}
  std::vector<std::string> gather_bytes(const std::string& s, size_t, Deadline) override { return {s, s}; }

 private:
  bool timings_;
  int calls_ = 0;
};

TEST(GradientReducerTimeline, EveryBucketIsAnAllReduceEventWithItsIndexAndBytes) {
  for (bool timings : {true, false}) {
    FakeTwoWorkers comm(timings);
    Timeline timeline;
    start_timeline(timeline, comm, std::chrono::seconds(1));
    std::vector<float> grads(1000, 1.0f);
    GradientReducer reducer(comm, grads.data(), grads.size(), 256 * sizeof(float), std::chrono::seconds(1));
    reducer.set_timeline(&timeline);
    reducer.begin_step();
    reducer.ready(600, 1000);
    reducer.finish();
    const size_t buckets = reducer.buckets().size();
    ASSERT_EQ(buckets, 4u);
    std::vector<TimelineEvent> all_reduces;
    size_t waits = 0;
    for (const TimelineEvent& e : timeline.events()) {
      if (e.track == TimelineTrack::AllReduce) all_reduces.push_back(e);
      if (std::string(e.name) == "all-reduce wait") waits += e.track == TimelineTrack::Compute;
    }
    EXPECT_EQ(waits, 1u);
    ASSERT_EQ(all_reduces.size(), buckets) << "timings " << timings;
    for (size_t i = 0; i < buckets; ++i) {
      const TimelineEvent& e = all_reduces[i];
      ASSERT_EQ(e.num_args, 3u);
      EXPECT_STREQ(e.args[0].first, "bucket");
      EXPECT_EQ(e.args[0].second, static_cast<double>(i));
      EXPECT_STREQ(e.args[1].first, "bytes");
      EXPECT_EQ(e.args[1].second, static_cast<double>((reducer.buckets()[i].end - reducer.buckets()[i].begin) * 4));
      if (timings) EXPECT_NEAR(e.duration_ns, 1e6, 1.0) << i;  // what the communicator reported
      if (i > 0) EXPECT_GE(e.begin_ns, all_reduces[i - 1].begin_ns + all_reduces[i - 1].duration_ns) << "overlap";
    }
  }
}

}  // namespace
}  // namespace dptrain
