// Reading a metrics file (`dptrain train --metrics`) back as curves: training and test loss and
// accuracy against epochs and against wall time, for `dptrain plot`.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace dptrain {

// What a curve shows.
enum class Quantity {
  TrainLoss,      // "epoch" records: mean training loss of the epoch
  TestLoss,       // "epoch" records
  TrainAccuracy,  // "epoch" records
  TestAccuracy,   // "epoch" records
  StepLoss,       // "step" records (train.metrics_every_steps): mean training loss since the previous one
  StepAccuracy,   // "step" records
};
constexpr size_t kQuantities = 6;

// "train loss", "step accuracy": for legends and messages.
const char* to_string(Quantity quantity);

// One point of a curve.
struct CurvePoint {
  double epochs;   // epochs trained at this point: 2 after the second epoch, 1.5 halfway through it
  double seconds;  // wall time since the file's first record that has a "time"; NaN when this record has none
  double value;
};

// A curve as pieces of line: a new piece starts at every "start" record after the first (a resumed
// run, or another run appended to the same file), so that no line joins two runs.
using Curve = std::vector<std::vector<CurvePoint>>;

// The curves of one metrics file.
struct RunCurves {
  std::string name;  // the run's name in legends
  std::string path;  // the file read
  std::array<Curve, kQuantities> curves;
  size_t epoch_records = 0;
  size_t step_records = 0;

  const Curve& curve(Quantity q) const { return curves[static_cast<size_t>(q)]; }
  Curve& curve(Quantity q) { return curves[static_cast<size_t>(q)]; }
  // Whether any point of any curve has a wall time (files written before records had "time" have none).
  bool has_times() const;
};

// Reads the metrics file `path` (one JSON object a line, as MetricsWriter writes them) into curves
// named `name`. Records of other events ("start" aside) and fields it does not use are passed over;
// non-finite values (written as null) leave a point out: every point's epochs and value are finite. Throws DataError naming the file (and the
// line) when it cannot be read, when a line is not a JSON object with a string "event", when a field
// it uses is not a number, or when the file holds no "epoch" or "step" record.
RunCurves read_metrics_curves(const std::string& path, const std::string& name);

// Legend names for `paths`: each file's stem ("runs/a.jsonl": "a"); where two stems are the same, the
// folder it is in is put before it ("runs/a/metrics.jsonl": "a/metrics").
std::vector<std::string> default_run_names(const std::vector<std::string>& paths);

}  // namespace dptrain
