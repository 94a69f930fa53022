// The gnuplot script of `dptrain plot`: runs' loss and accuracy curves, against epochs and against
// wall time, drawn into one PNG.
#pragma once

#include <string>
#include <vector>

#include "runtime/report/metrics_curves.h"

namespace dptrain::launcher {

// The size of the picture, in pixels.
struct PlotSize {
  size_t width = 1600;
  size_t height = 1000;
};

// A gnuplot script that draws `runs` into the PNG file `png_path`, its data inline (datablocks): a
// 2 x 2 multiplot of loss and accuracy against epochs (top) and against wall time since each file's
// first record (bottom), one colour per run; epoch records as lines with points (train solid, test
// dashed), step records as thin lines. A panel with nothing to draw says so. Uses the pngcairo
// terminal where gnuplot has it, else png. `png_path` must not hold control characters.
std::string gnuplot_script(const std::vector<RunCurves>& runs, const std::string& png_path, PlotSize size = {});

// `text` as a gnuplot single-quoted string: quotes doubled, control characters shown as '?'.
std::string gnuplot_quote(const std::string& text);

}  // namespace dptrain::launcher
