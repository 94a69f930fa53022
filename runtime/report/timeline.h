// Timeline: what every worker did and when — forward, backward, each bucket's all-reduce, data
// waits, optimizer steps — merged into one Chrome-trace / Perfetto JSON file with a track per rank.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>


namespace dptrain {

// The row an event is drawn on, inside its rank's track.
enum class TimelineTrack : uint8_t {
  Compute = 0,    // forward, backward, optimizer, waits on the main thread
  AllReduce = 1,  // gradient buckets as the communicator ran them
  Data = 2,       // waiting for the next batch
};
constexpr size_t kTimelineTracks = 3;
const char* to_string(TimelineTrack track);

// One complete ("X") event; name, category and argument keys must outlive the Timeline
// (string literals, or a layer's type()).
struct TimelineEvent {
  static constexpr size_t kMaxArgs = 4;
  const char* name = "";
  const char* category = "";
  TimelineTrack track = TimelineTrack::Compute;
  uint8_t num_args = 0;
  int64_t begin_ns = 0;     // since this rank's origin
  int64_t duration_ns = 0;
  std::array<std::pair<const char*, double>, kMaxArgs> args{};
};

// Records one worker's events; thread-safe. A null Timeline* everywhere means "no timeline", so
// code that records checks the pointer and does nothing else when it is off.
class Timeline {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kDefaultMaxEvents = 200000;  // about 20 MB per rank

  explicit Timeline(size_t max_events = kDefaultMaxEvents);

  // Takes "now" as this rank's origin, and records its wall-clock time at the origin and its host
  // name; `worker` numbers its track (its rank at the start, see worker()). Called by every rank
  // right after a common barrier (start_timeline in comm/timeline_merge.h), so that ranks agree.
  void start(size_t worker);
  // For a worker that joins a running job: its origin is `elapsed` before now (rank 0's time since
  // its origin, as rank 0 sent it), its track number `worker`, and `note` says when it joined.
  void start_joined(std::chrono::nanoseconds elapsed, size_t worker, const std::string& note);
  Clock::time_point origin() const { return origin_; }
  // The number of this worker's track, which stays when its rank changes (workers leaving).
  size_t worker() const;
  // Appended to the track's name ("left after epoch 3").
  void add_note(const std::string& note);
  // Rank 0 keeps the events of a worker that left (what it sent, see merge_payload) for the merged file.
  void keep_departed(std::string payload);

  // Adds an event that ran from `begin` to `end`. Past max_events it is counted, not kept.
  void add(const char* name, const char* category, TimelineTrack track, Clock::time_point begin,
           Clock::time_point end, std::initializer_list<std::pair<const char*, double>> args = {});
  // The same for an event whose name, category, track and arguments are filled in.
  void add(TimelineEvent event, Clock::time_point begin, Clock::time_point end);

  size_t size() const;
  size_t dropped() const;
  std::vector<TimelineEvent> events() const;

  // This rank's events as Chrome-trace JSON objects, comma-separated (no brackets), with
  // pid = worker() + 1 and tid = track + 1 (Perfetto reserves 0): its process and thread names
  // ("rank R (host)" and any notes), its events, and a note if events were dropped.
  std::string serialize(size_t rank) const;
  // A JSON object describing this rank (worker number, host, pid, wall-clock start, event counts).
  std::string describe_rank(size_t rank) const;
  // describe_rank, a NUL byte, then serialize: what write_merged_timeline gathers from each rank.
  std::string merge_payload(size_t rank) const;
  // What keep_departed kept.
  std::vector<std::string> departed() const;

 private:
  mutable std::mutex mutex_;
  size_t max_events_;
  std::vector<TimelineEvent> events_;
  size_t dropped_ = 0;
  Clock::time_point full_at_{};
  Clock::time_point origin_ = Clock::now();
  int64_t origin_unix_us_ = 0;
  std::string host_;
  size_t worker_ = 0;
  std::string notes_;                  // ", joined after epoch 1, left after epoch 3"
  std::vector<std::string> departed_;  // rank 0: merge payloads of workers that left
};

// Measures the time from its construction to its destruction and adds it to the timeline
// (nothing at all when the timeline is null).
class TimelineSpan {
 public:
  TimelineSpan(Timeline* timeline, const char* name, const char* category,
               TimelineTrack track = TimelineTrack::Compute)
      : timeline_(timeline), name_(name), category_(category), track_(track) {
    if (timeline_) begin_ = Timeline::Clock::now();
  }
  ~TimelineSpan() { end(); }
  TimelineSpan(const TimelineSpan&) = delete;
  TimelineSpan& operator=(const TimelineSpan&) = delete;

  // Adds a numeric argument shown with the event (at most TimelineEvent::kMaxArgs).
  TimelineSpan& arg(const char* key, double value) {
    if (timeline_ && num_args_ < args_.size()) args_[num_args_++] = {key, value};
    return *this;
  }
  // Ends the span now (otherwise at destruction).
  void end();

 private:
  Timeline* timeline_;
  const char* name_;
  const char* category_;
  TimelineTrack track_;
  Timeline::Clock::time_point begin_{};
  std::array<std::pair<const char*, double>, TimelineEvent::kMaxArgs> args_{};
  size_t num_args_ = 0;
};

// Fails with a UsageError naming `path` unless a file can be written there (checked by creating
// and removing a temporary file next to it), so a bad --timeline stops a run before training.
void check_timeline_path(const std::string& path);

// Writes one Chrome-trace JSON file at `path` (a temporary file in the same folder, renamed into
// place) from every worker's Timeline::merge_payload, in track order; `world_size` is the job's
// size at the end. Returns the number of events written. write_merged_timeline
// (comm/timeline_merge.h) gathers the payloads.
size_t write_timeline_file(const std::vector<std::string>& payloads, size_t world_size, const std::string& path);

}  // namespace dptrain
