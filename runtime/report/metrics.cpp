#include "runtime/report/metrics.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"

namespace dptrain {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::ostringstream out;
    out << static_cast<long long>(v);
    return out.str();
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

MetricsRecord::MetricsRecord(std::string event) : event_(std::move(event)) {}

MetricsRecord& MetricsRecord::add(const std::string& key, double value) {
  fields_.emplace_back(key, json_number(value));
  return *this;
}

MetricsRecord& MetricsRecord::add(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, json_string(value));
  return *this;
}

MetricsRecord& MetricsRecord::add_time(const std::string& key, std::chrono::system_clock::time_point when) {
  const double seconds = std::chrono::duration<double>(when.time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  fields_.emplace_back(key, buf);
  return *this;
}

bool MetricsRecord::has(const std::string& key) const {
  for (const auto& field : fields_) {
    if (field.first == key) return true;
  }
  return false;
}

std::string MetricsRecord::to_json() const {
  std::string out = "{\"event\": " + json_string(event_);
  for (const auto& [key, value] : fields_) out += ", " + json_string(key) + ": " + value;
  return out + "}";
}

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  int fd = -1;
  try {
    fd = open_private_append(path);
  } catch (const Error& e) {
    throw UsageError("--metrics " + std::string(e.what()) + "; check that the folder exists");
  }
  out_.reset(::fdopen(fd, "a"));
  if (!out_) {
    ::close(fd);
    throw UsageError("--metrics " + path + ": cannot open for writing");
  }
}

void MetricsWriter::write(const MetricsRecord& record) {
  if (!out_) return;
  MetricsRecord stamped(record);
  if (!stamped.has("time")) stamped.add_time("time", std::chrono::system_clock::now());
  const std::string line = stamped.to_json() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), out_.get()) != line.size() || std::fflush(out_.get()) != 0) {
    throw Error("--metrics " + path_ + ": write failed (disk full?)");
  }
}

bool started_by_mpi_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

ProgressStyle detect_progress_style(std::FILE* out) {
  if (started_by_mpi_launcher()) return ProgressStyle::Plain;
  return isatty(fileno(out)) ? ProgressStyle::Terminal : ProgressStyle::Plain;
}

std::string format_percent(double share) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f%%", 100.0 * share);
  return text;
}

std::string format_duration(double seconds) {
  char buf[32];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds) / 3600, static_cast<int>(seconds) % 3600 / 60);
  }
  return buf;
}

ProgressReporter::ProgressReporter(ProgressStyle style, double period_seconds, std::FILE* out)
    : style_(style), period_(period_seconds), out_(out) {}

void ProgressReporter::start_epoch(size_t epoch, size_t epochs, size_t steps) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_ = steps;
  start_ = last_print_ = std::chrono::steady_clock::now();
  drawn_ = false;
}

void ProgressReporter::update(size_t step, double loss, double accuracy, double images_per_sec) {
  if (style_ == ProgressStyle::Off) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const bool done = step == steps_;
  if (style_ == ProgressStyle::Terminal && since_print < 0.2 && !done) return;
  if (style_ == ProgressStyle::Plain && (since_print < period_ || done)) return;
  last_print_ = now;
  const double eta = step ? elapsed / step * (steps_ - step) : 0;
  if (style_ == ProgressStyle::Terminal) {
    const int width = 24;
    const int filled = steps_ ? static_cast<int>(width * step / steps_) : width;
    std::fprintf(out_, "\r\033[Kepoch %zu/%zu [%.*s%*s] %zu/%zu loss %.4f acc %.4f %.0f img/s ETA %s", epoch_,
                 epochs_, filled, "########################", width - filled, "", step, steps_, loss, accuracy,
                 images_per_sec, format_duration(eta).c_str());
    drawn_ = true;
  } else {
    std::fprintf(out_, "epoch %zu/%zu step %zu/%zu (%.0f%%) loss %.4f acc %.4f %.0f img/s elapsed %s ETA %s\n", epoch_,
                 epochs_, step, steps_, 100.0 * step / steps_, loss, accuracy, images_per_sec,
                 format_duration(elapsed).c_str(), format_duration(eta).c_str());
  }
  std::fflush(out_);
}

void ProgressReporter::finish_epoch() {
  if (drawn_) std::fprintf(out_, "\r\033[K");
  drawn_ = false;
  std::fflush(out_);
}

}  // namespace dptrain
