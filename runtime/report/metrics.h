// Metrics: JSON-lines records for dashboards, and the progress shown while an epoch runs.
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dptrain {

// `s` as a JSON string literal, quoted and escaped.
std::string json_string(const std::string& s);
// `v` as a JSON number: an integer as one, others with 6 significant digits; null when not finite.
std::string json_number(double v);

// One metrics record: an event name and numeric or string fields, written as one JSON object.
class MetricsRecord {
 public:
  explicit MetricsRecord(std::string event);
  MetricsRecord& add(const std::string& key, double value);
  MetricsRecord& add(const std::string& key, const std::string& value);
  // `when` as seconds since the Unix epoch (1970-01-01 UTC), to the millisecond.
  MetricsRecord& add_time(const std::string& key, std::chrono::system_clock::time_point when);
  bool has(const std::string& key) const;
  std::string to_json() const;

 private:
  std::string event_;
  std::vector<std::pair<std::string, std::string>> fields_;  // key, JSON-encoded value
};

// Appends records to a .jsonl file, one object a line, flushed after each so a crash loses none. Each
// line ends with "time": the wall-clock time it was written (add_time), unless the record has its own.
// A new file is created owner-only; a symlink or FIFO at the path is refused.
class MetricsWriter {
 public:
  MetricsWriter() = default;  // writes nothing
  explicit MetricsWriter(const std::string& path);
  void write(const MetricsRecord& record);
  bool enabled() const { return out_ != nullptr; }

 private:
  struct Close {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::unique_ptr<std::FILE, Close> out_;
  std::string path_;
};

// How progress is shown while an epoch runs.
enum class ProgressStyle {
  Terminal,  // one line redrawn in place, with ETA
  Plain,     // a full line every `period` seconds (logs, batch jobs)
  Off,
};

// Shows how far an epoch has got.
class ProgressReporter {
 public:
  ProgressReporter(ProgressStyle style, double period_seconds, std::FILE* out = stdout);
  void start_epoch(size_t epoch, size_t epochs, size_t steps);
  // After step `step` (1-based) with the running mean loss and accuracy of this epoch.
  void update(size_t step, double loss, double accuracy, double images_per_sec);
  // Clears the terminal line before the epoch summary is printed.
  void finish_epoch();

 private:
  ProgressStyle style_;
  double period_;
  std::FILE* out_;
  size_t epoch_ = 0, epochs_ = 0, steps_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
  bool drawn_ = false;
};

// Terminal when `out` is a terminal and no MPI launcher started this process, Plain otherwise:
// mpirun gives its ranks a pseudo-terminal even when its own output goes to a file, so a rank
// cannot tell where its lines end up.
ProgressStyle detect_progress_style(std::FILE* out);

// Whether an MPI launcher (Open MPI's mpirun, or any PMIx or PMI one) started this process.
bool started_by_mpi_launcher();

// "1m05s", "12.3s": a duration for people.
std::string format_duration(double seconds);

// "80.0%": a share in [0, 1] as a percentage with one decimal.
std::string format_percent(double share);

// Seconds elapsed since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace dptrain
