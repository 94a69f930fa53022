#include "launcher/commands/plot_script.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dptrain::launcher {

namespace {

// One colour per run, in order (and again from the first after the last).
const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// What a panel's x axis shows.
enum class Axis { Epochs, WallTime };

// The unit of the wall-time axis: seconds, minutes or hours, whichever keeps the numbers small.
struct TimeUnit {
  double seconds = 1;
  const char* name = "s";
};

TimeUnit time_unit(const std::vector<RunCurves>& runs) {
  double longest = 0;
  for (const RunCurves& run : runs) {
    for (const Curve& curve : run.curves) {
      for (const auto& piece : curve) {
        for (const CurvePoint& p : piece) {
          if (std::isfinite(p.seconds)) longest = std::max(longest, p.seconds);
        }
      }
    }
  }
  if (longest <= 180) return {1, "s"};
  if (longest <= 180 * 60) return {60, "min"};
  return {3600, "h"};
}

std::string number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", value);
  return buf;
}

// "$r0q1e": the datablock of run 0, quantity 1, against epochs.
std::string block_name(size_t run, Quantity q, Axis axis) {
  return "$r" + std::to_string(run) + "q" + std::to_string(static_cast<int>(q)) + (axis == Axis::Epochs ? "e" : "t");
}

// The points of `curve` against `axis` as "x y" lines, a blank line between pieces; "" when none.
std::string block_rows(const Curve& curve, Axis axis, TimeUnit unit) {
  std::string rows;
  for (const auto& piece : curve) {
    std::string lines;
    for (const CurvePoint& p : piece) {
      const double x = axis == Axis::Epochs ? p.epochs : p.seconds / unit.seconds;
      if (std::isfinite(x) && std::isfinite(p.value)) lines += number(x) + " " + number(p.value) + "\n";
    }
    if (lines.empty()) continue;
    if (!rows.empty()) rows += "\n";
    rows += lines;
  }
  return rows;
}

// How a quantity's curve is drawn and named in the key.
struct Style {
  Quantity quantity;
  const char* with;   // gnuplot's "with ..." of it, less the colour
  const char* label;  // after the run's name in the key
};

// A panel of the 2 x 2 picture.
struct Panel {
  const char* title;
  const char* y_label;
  const char* key;  // where the key goes: away from where the curves usually run
  Axis axis;
  Style styles[3];  // drawn in this order: step records underneath
};

const Panel kPanels[] = {
    {"loss against epochs", "loss", "top right", Axis::Epochs,
     {{Quantity::StepLoss, "lines lw 1", "steps"},
      {Quantity::TrainLoss, "linespoints lw 2 pt 7 ps 0.8", "train"},
      {Quantity::TestLoss, "linespoints lw 2 dt 2 pt 6 ps 0.8", "test"}}},
    {"accuracy against epochs", "accuracy", "bottom right", Axis::Epochs,
     {{Quantity::StepAccuracy, "lines lw 1", "steps"},
      {Quantity::TrainAccuracy, "linespoints lw 2 pt 7 ps 0.8", "train"},
      {Quantity::TestAccuracy, "linespoints lw 2 dt 2 pt 6 ps 0.8", "test"}}},
    {"loss against wall time", "loss", "top right", Axis::WallTime,
     {{Quantity::StepLoss, "lines lw 1", "steps"},
      {Quantity::TrainLoss, "linespoints lw 2 pt 7 ps 0.8", "train"},
      {Quantity::TestLoss, "linespoints lw 2 dt 2 pt 6 ps 0.8", "test"}}},
    {"accuracy against wall time", "accuracy", "bottom right", Axis::WallTime,
     {{Quantity::StepAccuracy, "lines lw 1", "steps"},
      {Quantity::TrainAccuracy, "linespoints lw 2 pt 7 ps 0.8", "train"},
      {Quantity::TestAccuracy, "linespoints lw 2 dt 2 pt 6 ps 0.8", "test"}}},
};

}  // namespace

std::string gnuplot_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string gnuplot_script(const std::vector<RunCurves>& runs, const std::string& png_path, PlotSize size) {
  const TimeUnit unit = time_unit(runs);
  const std::string dimensions = std::to_string(size.width) + "," + std::to_string(size.height);
  std::string names;
  for (const RunCurves& run : runs) names += (names.empty() ? "" : ", ") + run.name;
  std::string out = "# dptrain plot: " + std::to_string(runs.size()) + " run(s)\n";
  out += "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n  set terminal pngcairo size " + dimensions +
         " font \",10\" noenhanced\n} else {\n  set terminal png size " + dimensions + " noenhanced\n}\n";
  out += "set output " + gnuplot_quote(png_path) + "\n";

  // The data: one block per run, quantity and axis that has points.
  std::vector<std::vector<std::string>> blocks(runs.size());  // [run][quantity * 2 + axis]: name, or ""
  for (size_t r = 0; r < runs.size(); ++r) {
    for (size_t q = 0; q < kQuantities; ++q) {
      for (Axis axis : {Axis::Epochs, Axis::WallTime}) {
        const std::string rows = block_rows(runs[r].curves[q], axis, unit);
        const std::string name = rows.empty() ? "" : block_name(r, static_cast<Quantity>(q), axis);
        if (!rows.empty()) out += name + " << EOD\n" + rows + "EOD\n";
        blocks[r].push_back(name);
      }
    }
  }

  out += "set multiplot layout 2,2 title " + gnuplot_quote("dptrain: " + names) + "\n";
  // Ranges end at the data (not the next tic) plus a margin, so no point sits on a border.
  out += "set grid\nset autoscale fix\nset offsets 0, graph 0.03, graph 0.05, graph 0.05\n";
  for (const Panel& panel : kPanels) {
    out += "set title " + gnuplot_quote(panel.title) + "\nset ylabel " + gnuplot_quote(panel.y_label) + "\n";
    out += std::string("set key ") + panel.key + " opaque font \",9\"\n";
    out += "set xlabel " +
           gnuplot_quote(panel.axis == Axis::Epochs ? std::string("epoch")
                                                    : std::string("wall time (") + unit.name + ")") +
           "\n";
    std::vector<std::string> elements;
    for (size_t r = 0; r < runs.size(); ++r) {
      const char* colour = kColours[r % (sizeof kColours / sizeof kColours[0])];
      for (const Style& style : panel.styles) {
        const std::string& block =
            blocks[r][static_cast<size_t>(style.quantity) * 2 + (panel.axis == Axis::Epochs ? 0 : 1)];
        if (block.empty()) continue;
        elements.push_back(block + " using 1:2 with " + style.with + " lc rgb '" + colour + "' title " +
                           gnuplot_quote(runs[r].name + " " + style.label));
      }
    }
    if (elements.empty()) {
      const std::string why = panel.axis == Axis::WallTime
                                  ? "no wall-clock times: these records have no \"time\" (written before it was added)"
                                  : "nothing to draw";
      out += "set label 1 " + gnuplot_quote(why) + " at graph 0.5,0.5 center\n";
      out += "set xrange [0:1]\nset yrange [0:1]\nplot NaN notitle\nunset label 1\n";
      continue;
    }
    out += "set xrange [0:*]\nset yrange [*:*]\nplot ";
    for (size_t i = 0; i < elements.size(); ++i) out += (i ? ", \\\n     " : "") + elements[i];
    out += "\n";
  }
  out += "unset multiplot\nset output\n";
  return out;
}

}  // namespace dptrain::launcher
