#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "launcher/commands/cli_checks.h"
#include "launcher/commands/plot_command.h"
#include "launcher/commands/plot_script.h"
#include "launcher/supervisor/child_process.h"
#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/report/metrics_curves.h"

namespace dptrain::launcher {

namespace {

namespace fs = std::filesystem;

// At most the last `max_bytes` of what the file `path` holds, without surrounding blank space.
std::string tail_of(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  const size_t first = text.find_first_not_of(" \t\r\n"), last = text.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? "" : text.substr(first, last - first + 1);
}

// Whether the file `path` starts with the 8 bytes every PNG file starts with.
bool starts_as_png(const std::string& path) {
  static const char kSignature[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, sizeof head) && std::equal(head, head + 8, kSignature);
}

// Refuses an output path that gnuplot cannot be told, that is a folder, or that is one of the inputs.
void check_output(const std::string& output, const std::vector<std::string>& inputs) {
  if (std::any_of(output.begin(), output.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    throw UsageError("-o: the output name holds a control character; choose a plain file name such as curves.png");
  }
  std::error_code error;
  if (fs::is_directory(output, error)) {
    throw UsageError("-o " + output + ": is a folder; give a file name, such as " +
                     (fs::path(output) / "curves.png").string());
  }
  for (const std::string& input : inputs) {
    if (fs::exists(output, error) && fs::equivalent(output, input, error)) {
      throw UsageError("-o " + output + ": is one of the metrics files being plotted; choose another name");
    }
  }
}

// The path of gnuplot on PATH; an error saying how to install it when there is none.
std::string find_gnuplot() {
  const std::string gnuplot = find_program("gnuplot");
  if (gnuplot.empty()) {
    throw UsageError("gnuplot is not installed (no gnuplot on PATH): dptrain plot draws with it; install it with "
                     "apt-get install gnuplot-nox (scripts/install-deps.sh does)");
  }
  return gnuplot;
}

// Has `gnuplot` draw `runs` into a temporary file beside `output`, then renames that over `output`.
void draw(const std::string& gnuplot, const std::vector<RunCurves>& runs, const std::string& output,
          double timeout_seconds) {
  PrivateTempFile png(output, FileAccess::Umask);  // created now: an unwritable folder fails before gnuplot runs
  png.close();
  const std::string temp_folder = fs::temp_directory_path().string();
  PrivateTempFile script(temp_folder + "/dptrain-plot.gp");
  script.write(gnuplot_script(runs, png.path()));
  script.close();
  PrivateTempFile log(temp_folder + "/dptrain-plot.log");
  ChildProcess child({gnuplot, script.path()}, log.fd());
  if (!child.wait_for(timeout_seconds)) {
    child.terminate(2.0);
    throw Error("gnuplot did not finish drawing " + output + " within " + format_number(timeout_seconds) +
                " s (raise --timeout for very long metrics files); " + output + " was not written");
  }
  if (child.exit_code() != 0) {
    throw Error("gnuplot failed (exit code " + std::to_string(child.exit_code()) + ") drawing " + output + "; " +
                output + " was not written. gnuplot said: " + tail_of(log.path(), 2000));
  }
  if (!starts_as_png(png.path())) {
    throw Error("gnuplot wrote no PNG for " + output + " (its png and pngcairo terminals may be missing: install " +
                "gnuplot-nox); " + output + " was not written. gnuplot said: " + tail_of(log.path(), 2000));
  }
  png.publish();
}

}  // namespace

CLI::App* add_plot_command(CLI::App& app, PlotArgs& args) {
  auto* cmd = app.add_subcommand(
      "plot", "Draw loss and accuracy curves of metrics files (dptrain train --metrics) into a PNG, with gnuplot");
  cmd->add_option("files", args.files, "Metrics files (.jsonl), one run each; the runs are drawn over one another")
      ->required();
  cmd->add_option("-o,--output", args.output, "The PNG file to write (replaced once the new one is complete)")
      ->required();
  cmd->add_option("--name", args.names, "A run's name in the key, one per file in order (default: the file stems)")
      ->allow_extra_args(false);
  cmd->add_option("--timeout", args.timeout_seconds, "Seconds gnuplot may take (default 120)")
      ->check(seconds(Zero::Refused));
  cmd->parse_complete_callback([&args] {
    if (!args.names.empty() && args.names.size() != args.files.size()) {
      throw CLI::ValidationError("--name", "given " + std::to_string(args.names.size()) + " time(s) for " +
                                               std::to_string(args.files.size()) +
                                               " file(s); give one name per file, in the files' order, or none");
    }
  });
  return cmd;
}

int run_plot(const PlotArgs& args) {
  try {
    check_output(args.output, args.files);
    const std::vector<std::string> names = args.names.empty() ? default_run_names(args.files) : args.names;
    std::vector<RunCurves> runs;
    size_t epochs = 0, steps = 0;
    for (size_t i = 0; i < args.files.size(); ++i) {
      runs.push_back(read_metrics_curves(args.files[i], names[i]));
      epochs += runs.back().epoch_records;
      steps += runs.back().step_records;
    }
    draw(find_gnuplot(), runs, args.output, args.timeout_seconds);
    std::string listed;
    for (const RunCurves& run : runs) listed += (listed.empty() ? "" : ", ") + run.name;
    std::printf("wrote %s: %zu run(s) (%s), %zu epoch and %zu step records\n", args.output.c_str(), runs.size(),
                listed.c_str(), epochs, steps);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "dptrain plot: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dptrain plot: internal error: %s\n", e.what());
    return 3;
  }
}

}  // namespace dptrain::launcher
