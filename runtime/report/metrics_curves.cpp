#include "runtime/report/metrics_curves.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

using nlohmann::json;

constexpr size_t kMaxLineBytes = 1 << 20;  // a metrics record is a few hundred bytes
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const char* const kWhatItIs = "a metrics file holds one JSON object a line, as dptrain train --metrics writes";

// Reads one metrics file line by line into curves.
class CurveReader {
 public:
  CurveReader(const std::string& path, const std::string& name) {
    curves_.path = path;
    curves_.name = name;
  }

  size_t lines_read() const { return line_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(curves_.path + ":" + std::to_string(line_) + ": " + what);
  }

  void read_line(const std::string& text) {
    ++line_;
    json record;
    try {
      record = json::parse(text);
    } catch (const json::parse_error& e) {
      fail("not a metrics record: invalid JSON at byte " + std::to_string(e.byte) + " of the line (" + kWhatItIs + ")");
    } catch (const json::exception& e) {  // valid JSON beyond what a double holds: "number overflow parsing '1e999'"
      const std::string what = e.what();  // "[json.exception.out_of_range.406] number overflow ..."
      const size_t tag = what.find("] ");
      fail("not a metrics record: " + (tag == std::string::npos ? what : what.substr(tag + 2)));
    }
    if (!record.is_object()) {
      fail(std::string("not a metrics record: a JSON ") + record.type_name() + ", not an object (" + kWhatItIs + ")");
    }
    const auto event = record.find("event");
    if (event == record.end() || !event->is_string()) {
      fail(std::string("not a metrics record: no \"event\" string (") + kWhatItIs + ")");
    }
    const double time = optional_number(record, "time");
    if (std::isnan(time_zero_) && std::isfinite(time)) time_zero_ = time;
    const double elapsed = time - time_zero_;
    const double seconds = std::isfinite(elapsed) ? elapsed : kNaN;  // NaN without a time
    const std::string& kind = event->get_ref<const std::string&>();
    if (kind == "start") {
      if (curves_.epoch_records + curves_.step_records > 0) break_.fill(true);
    } else if (kind == "epoch") {
      const double epochs = required_number(record, "epoch");
      add(Quantity::TrainLoss, {epochs, seconds, optional_number(record, "loss")});
      add(Quantity::TestLoss, {epochs, seconds, optional_number(record, "test_loss")});
      add(Quantity::TrainAccuracy, {epochs, seconds, optional_number(record, "train_accuracy")});
      add(Quantity::TestAccuracy, {epochs, seconds, optional_number(record, "test_accuracy")});
      ++curves_.epoch_records;
    } else if (kind == "step") {
      const double epoch = required_number(record, "epoch");
      const double step_in_epoch = required_number(record, "step_in_epoch");
      const double steps_per_epoch = required_number(record, "steps_per_epoch");
      if (!(steps_per_epoch > 0)) fail("this \"step\" record's \"steps_per_epoch\" is not positive");
      const double epochs = epoch - 1 + step_in_epoch / steps_per_epoch;
      add(Quantity::StepLoss, {epochs, seconds, optional_number(record, "loss")});
      add(Quantity::StepAccuracy, {epochs, seconds, optional_number(record, "train_accuracy")});
      ++curves_.step_records;
    }
  }

  RunCurves finish() {
    if (curves_.epoch_records + curves_.step_records == 0) {
      throw DataError(curves_.path + ": no \"epoch\" or \"step\" records to plot (" + std::to_string(line_) +
                      " records read; a run writes one \"epoch\" record per epoch trained, and \"step\" records "
                      "with train.metrics_every_steps)");
    }
    return std::move(curves_);
  }

 private:
  // The number `key` holds: NaN when it is missing or null (a non-finite value); an error otherwise.
  double optional_number(const json& record, const char* key) const {
    const auto it = record.find(key);
    if (it == record.end() || it->is_null()) return kNaN;
    if (!it->is_number()) fail("\"" + std::string(key) + "\" is a " + it->type_name() + ", expected a number");
    return it->get<double>();
  }

  double required_number(const json& record, const char* key) const {
    const double value = optional_number(record, key);
    if (std::isnan(value)) {
      fail("this \"" + record["event"].get<std::string>() + "\" record has no number \"" + key + "\"");
    }
    return value;
  }

  void add(Quantity q, const CurvePoint& point) {
    if (!std::isfinite(point.value) || !std::isfinite(point.epochs)) return;  // 1e999 parses as infinity
    Curve& curve = curves_.curve(q);
    const size_t index = static_cast<size_t>(q);
    if (curve.empty() || (break_[index] && !curve.back().empty())) curve.emplace_back();
    break_[index] = false;
    curve.back().push_back(point);
  }

  RunCurves curves_;
  size_t line_ = 0;
  double time_zero_ = kNaN;  // the first "time" in the file
  std::array<bool, kQuantities> break_{};  // the curve's next point starts a new piece
};

struct CloseFile {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

const char* to_string(Quantity quantity) {
  switch (quantity) {
    case Quantity::TrainLoss: return "train loss";
    case Quantity::TestLoss: return "test loss";
    case Quantity::TrainAccuracy: return "train accuracy";
    case Quantity::TestAccuracy: return "test accuracy";
    case Quantity::StepLoss: return "step loss";
    case Quantity::StepAccuracy: return "step accuracy";
  }
  return "?";
}

bool RunCurves::has_times() const {
  for (const Curve& curve : curves) {
    for (const auto& piece : curve) {
      for (const CurvePoint& p : piece) {
        if (!std::isnan(p.seconds)) return true;
      }
    }
  }
  return false;
}

RunCurves read_metrics_curves(const std::string& path, const std::string& name) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw DataError(path + ": cannot read the metrics file (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) throw DataError(path + ": not a regular file; expected a metrics .jsonl file");
  std::unique_ptr<std::FILE, CloseFile> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw DataError(path + ": cannot read the metrics file (" + std::strerror(errno) + ")");
  CurveReader reader(path, name);
  std::string pending;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
    pending.append(buffer, got);
    size_t begin = 0;
    for (size_t end; (end = pending.find('\n', begin)) != std::string::npos; begin = end + 1) {
      reader.read_line(pending.substr(begin, end - begin));
    }
    pending.erase(0, begin);
    if (pending.size() > kMaxLineBytes) {
      throw DataError(path + ":" + std::to_string(reader.lines_read() + 1) + ": a line longer than 1 MiB: not a " +
                      "metrics file");
    }
  }
  if (std::ferror(file.get())) throw DataError(path + ": read error (" + std::strerror(errno) + ")");
  if (!pending.empty()) reader.read_line(pending);  // a last line without its newline
  return reader.finish();
}

std::vector<std::string> default_run_names(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  std::map<std::string, size_t> uses;
  for (const std::string& path : paths) ++uses[names.emplace_back(fs::path(path).stem().string())];
  for (size_t i = 0; i < paths.size(); ++i) {
    if (uses[names[i]] < 2) continue;
    const std::string folder = fs::path(paths[i]).parent_path().filename().string();
    if (!folder.empty()) names[i] = folder + "/" + names[i];
  }
  std::map<std::string, size_t> again;
  for (const std::string& name : names) ++again[name];
  for (size_t i = 0; i < names.size(); ++i) {
    if (again[names[i]] > 1) names[i] += " (" + std::to_string(i + 1) + ")";
  }
  return names;
}

}  // namespace dptrain
