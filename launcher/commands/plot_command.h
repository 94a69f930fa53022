// `dptrain plot METRICS.jsonl ... -o FILE.png`: training curves of one or more runs, drawn by gnuplot.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dptrain::launcher {

// Options of `dptrain plot`.
struct PlotArgs {
  std::vector<std::string> files;  // metrics files (dptrain train --metrics), one run each
  std::string output;              // -o FILE.png
  std::vector<std::string> names;  // --name: the runs' names in the key, one per file; default: the files' stems
  double timeout_seconds = 120;    // --timeout: the longest gnuplot may take
};

// Registers `plot` on `app`, parsing into `args`; returns the subcommand.
CLI::App* add_plot_command(CLI::App& app, PlotArgs& args);

// Reads the files, has gnuplot draw them into a temporary file beside the output and renames it over
// the output once it is a whole PNG. Returns 0; 1 after one message on stderr when a file cannot be
// read or plotted, gnuplot is missing, fails or takes too long, or the output cannot be written (an
// existing output is then left as it was).
int run_plot(const PlotArgs& args);

}  // namespace dptrain::launcher
