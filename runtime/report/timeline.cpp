#include "runtime/report/timeline.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "runtime/core/errors.h"
#include "runtime/core/host.h"
#include "runtime/core/private_files.h"

namespace dptrain {

namespace {

// Appends `text` as a JSON string literal.
void append_json_string(std::string& out, const char* text) {
  out += '"';
  for (const char* p = text; *p; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

// Appends a number as JSON: integers without a fraction, NaN and infinity as null.
void append_json_number(std::string& out, double value) {
  char buf[32];
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", value);
  } else {
    std::snprintf(buf, sizeof(buf), "%.9g", value);
  }
  out += buf;
}

// Microseconds with nanosecond resolution, as Chrome traces take them.
void append_microseconds(std::string& out, int64_t ns) {
  char buf[32];
  const int64_t magnitude = ns < 0 ? -ns : ns;
  std::snprintf(buf, sizeof(buf), "%s%" PRId64 ".%03" PRId64, ns < 0 ? "-" : "", magnitude / 1000, magnitude % 1000);
  out += buf;
}

// A metadata ("M") event naming a process or thread, or giving its sort position.
void append_metadata(std::string& out, const char* what, size_t pid, int tid, const std::string& name,
                     double sort_index) {
  out += "{\"ph\": \"M\", \"pid\": " + std::to_string(pid);
  if (tid >= 0) out += ", \"tid\": " + std::to_string(tid);
  out += ", \"name\": \"";
  out += what;
  out += "\", \"args\": {";
  if (sort_index >= 0) {
    out += "\"sort_index\": ";
    append_json_number(out, sort_index);
  } else {
    out += "\"name\": ";
    append_json_string(out, name.c_str());
  }
  out += "}},\n";
}

}  // namespace

const char* to_string(TimelineTrack track) {
  switch (track) {
    case TimelineTrack::Compute: return "compute";
    case TimelineTrack::AllReduce: return "all-reduce";
    case TimelineTrack::Data: return "data";
  }
  return "?";
}

Timeline::Timeline(size_t max_events) : max_events_(max_events) {
  events_.reserve(std::min<size_t>(max_events_, 4096));
}

namespace {

int64_t unix_microseconds() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void Timeline::start(size_t worker) {
  std::lock_guard<std::mutex> lock(mutex_);
  origin_ = Clock::now();
  origin_unix_us_ = unix_microseconds();
  host_ = host_name();
  worker_ = worker;
}

void Timeline::start_joined(std::chrono::nanoseconds elapsed, size_t worker, const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  origin_ = Clock::now() - std::chrono::duration_cast<Clock::duration>(elapsed);
  origin_unix_us_ = unix_microseconds() - std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  host_ = host_name();
  worker_ = worker;
  notes_ += ", " + note;
}

size_t Timeline::worker() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return worker_;
}

void Timeline::add_note(const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  notes_ += ", " + note;
}

void Timeline::keep_departed(std::string payload) {
  std::lock_guard<std::mutex> lock(mutex_);
  departed_.push_back(std::move(payload));
}

std::vector<std::string> Timeline::departed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return departed_;
}

std::string Timeline::merge_payload(size_t rank) const {
  std::string payload = describe_rank(rank);
  payload += '\0';
  payload += serialize(rank);
  return payload;
}

void Timeline::add(const char* name, const char* category, TimelineTrack track, Clock::time_point begin,
                   Clock::time_point end, std::initializer_list<std::pair<const char*, double>> args) {
  TimelineEvent event;
  event.name = name;
  event.category = category;
  event.track = track;
  for (const auto& a : args) {
    if (event.num_args == TimelineEvent::kMaxArgs) break;
    event.args[event.num_args++] = a;
  }
  add(event, begin, end);
}

void Timeline::add(TimelineEvent event, Clock::time_point begin, Clock::time_point end) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (events_.size() >= max_events_) {
    if (dropped_++ == 0) full_at_ = begin;
    return;
  }
  event.begin_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(begin - origin_).count();
  event.duration_ns = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
  events_.push_back(event);
}

size_t Timeline::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_.size();
}

size_t Timeline::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

std::vector<TimelineEvent> Timeline::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

std::string Timeline::serialize(size_t rank) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out.reserve(160 * events_.size() + 1024);
  const std::string host = host_.empty() ? host_name() : host_;
  // Perfetto treats pid and tid 0 specially (the kernel's idle task): worker w is process w + 1,
  // track t is thread t + 1.
  const size_t process = worker_ + 1;
  append_metadata(out, "process_name", process, -1, "rank " + std::to_string(rank) + " (" + host + ")" + notes_, -1);
  append_metadata(out, "process_sort_index", process, -1, "", static_cast<double>(worker_));
  for (size_t t = 0; t < kTimelineTracks; ++t) {
    const int thread = static_cast<int>(t) + 1;
    append_metadata(out, "thread_name", process, thread, to_string(static_cast<TimelineTrack>(t)), -1);
    append_metadata(out, "thread_sort_index", process, thread, "", static_cast<double>(t));
  }
  const std::string pid = std::to_string(process);
  for (const TimelineEvent& e : events_) {
    out += "{\"ph\": \"X\", \"pid\": " + pid + ", \"tid\": " + std::to_string(static_cast<int>(e.track) + 1) + ", \"ts\": ";
    append_microseconds(out, e.begin_ns);
    out += ", \"dur\": ";
    append_microseconds(out, e.duration_ns);
    out += ", \"name\": ";
    append_json_string(out, e.name);
    out += ", \"cat\": ";
    append_json_string(out, e.category);
    out += ", \"args\": {";
    for (size_t i = 0; i < e.num_args; ++i) {
      if (i) out += ", ";
      append_json_string(out, e.args[i].first);
      out += ": ";
      append_json_number(out, e.args[i].second);
    }
    out += "}},\n";
  }
  if (dropped_) {
    out += "{\"ph\": \"i\", \"s\": \"p\", \"pid\": " + pid + ", \"tid\": 1, \"ts\": ";
    append_microseconds(out, std::chrono::duration_cast<std::chrono::nanoseconds>(full_at_ - origin_).count());
    out += ", \"name\": \"timeline full: " + std::to_string(dropped_) + " later events of this rank dropped (limit " +
           std::to_string(max_events_) + ")\", \"cat\": \"timeline\", \"args\": {}},\n";
  }
  if (!out.empty()) out.resize(out.size() - 2);  // the last ",\n"
  return out;
}

std::string Timeline::describe_rank(size_t rank) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "{\"rank\": " + std::to_string(rank) + ", \"worker\": " + std::to_string(worker_) + ", \"host\": ";
  append_json_string(out, (host_.empty() ? host_name() : host_).c_str());
  out += ", \"pid\": " + std::to_string(getpid()) + ", \"start_unix_us\": " + std::to_string(origin_unix_us_) +
         ", \"events\": " + std::to_string(events_.size()) + ", \"dropped_events\": " + std::to_string(dropped_) +
         ", \"max_events\": " + std::to_string(max_events_) + "}";
  return out;
}

void TimelineSpan::end() {
  if (!timeline_) return;
  TimelineEvent event;
  event.name = name_;
  event.category = category_;
  event.track = track_;
  event.num_args = static_cast<uint8_t>(num_args_);
  event.args = args_;
  timeline_->add(event, begin_, Timeline::Clock::now());
  timeline_ = nullptr;
}

void check_timeline_path(const std::string& path) {
  const std::filesystem::path p(path);
  if (path.empty() || p.filename().empty()) {
    throw UsageError("--timeline '" + path + "': give a file name, e.g. --timeline timeline.json");
  }
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) {
    throw UsageError("--timeline " + path + ": is a folder; give a file name, e.g. --timeline " +
                     (p / "timeline.json").string());
  }
  try {
    PrivateTempFile probe(path);  // removed again at once
  } catch (const Error& e) {
    throw UsageError("--timeline " + std::string(e.what()) + "; choose a path in a writable folder that exists");
  }
}

size_t write_timeline_file(const std::vector<std::string>& all, size_t world_size, const std::string& path) {
  std::unique_ptr<PrivateTempFile> temp;
  try {
    temp = std::make_unique<PrivateTempFile>(path);
  } catch (const Error& e) {
    throw UsageError("--timeline " + std::string(e.what()));
  }
  const int fd = ::dup(temp->fd());
  std::FILE* file = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
  if (!file) {
    if (fd >= 0) ::close(fd);
    throw UsageError("--timeline " + path + ": cannot write " + temp->path() + ": " + std::strerror(errno));
  }
  size_t events = 0;
  std::string ranks;
  std::fprintf(file, "{\"displayTimeUnit\": \"ms\",\n\"traceEvents\": [\n");
  bool first = true;
  for (size_t r = 0; r < all.size(); ++r) {
    const size_t split = all[r].find('\0');
    const std::string describe = all[r].substr(0, split);
    const char* body = split == std::string::npos ? "" : all[r].c_str() + split + 1;
    ranks += (r ? ",\n  " : "  ") + describe;
    if (*body) {
      std::fprintf(file, "%s%s", first ? "" : ",\n", body);
      first = false;
    }
    for (const char* p = std::strstr(body, "\"ph\": \"X\""); p; p = std::strstr(p + 1, "\"ph\": \"X\"")) ++events;
  }
  std::fprintf(file,
               "\n],\n\"otherData\": {\"producer\": \"dptrain %s\", \"world_size\": \"%zu\", \"workers\": \"%zu\", "
               "\"clock\": \"steady clock of each rank, zero right after a common barrier (ranks agree to within the "
               "barrier's exit skew; a worker that joined later, to within the hand-over's)\"},\n"
               "\"ranks\": [\n%s\n]}\n",
               DPTRAIN_VERSION, world_size, all.size(), ranks.c_str());
  const bool write_failed = std::ferror(file) != 0;
  const bool flush_failed = std::fflush(file) != 0;
  const int saved = errno;
  std::fclose(file);
  if (write_failed || flush_failed) {
    throw UsageError("--timeline " + path + ": writing " + temp->path() + " failed: " + std::strerror(saved));
  }
  try {
    temp->publish();
  } catch (const Error& e) {
    throw UsageError("--timeline " + std::string(e.what()));
  }
  return events;
}

}  // namespace dptrain
