// The gnuplot script of `dptrain plot`: data inline, one colour per run, and a script gnuplot accepts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "launcher/commands/plot_script.h"
#include "launcher/supervisor/child_process.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using launcher::gnuplot_quote;
using launcher::gnuplot_script;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// A run of `epochs` epochs whose loss halves each epoch, with a step record halfway through each;
// `timed`: its records have wall times (`seconds_per_epoch` apart).
RunCurves run_of(const std::string& name, int epochs, bool timed, double seconds_per_epoch = 30) {
  const double no_time = std::numeric_limits<double>::quiet_NaN();
  RunCurves run;
  run.name = name;
  run.curve(Quantity::TrainLoss).emplace_back();
  run.curve(Quantity::TestAccuracy).emplace_back();
  run.curve(Quantity::StepLoss).emplace_back();
  for (int e = 1; e <= epochs; ++e) {
    const double at = timed ? e * seconds_per_epoch : no_time;
    const double halfway = timed ? (e - 0.5) * seconds_per_epoch : no_time;
    run.curve(Quantity::TrainLoss)[0].push_back({double(e), at, std::pow(0.5, e)});
    run.curve(Quantity::TestAccuracy)[0].push_back({double(e), at, 1 - std::pow(0.5, e)});
    run.curve(Quantity::StepLoss)[0].push_back({e - 0.5, halfway, std::pow(0.5, e - 0.5)});
  }
  run.epoch_records = static_cast<size_t>(epochs);
  run.step_records = static_cast<size_t>(epochs);
  return run;
}

TEST(PlotScript, DrawsEveryRunsCurvesFromInlineDataInItsOwnColour) {
  const std::string script = gnuplot_script({run_of("lr 0.1", 3, true), run_of("bob's run", 2, true)}, "/tmp/x.png");
  EXPECT_TRUE(has(script, "set terminal pngcairo size 1600,1000")) << script;
  EXPECT_TRUE(has(script, "set terminal png size 1600,1000")) << "the fallback without cairo";
  EXPECT_TRUE(has(script, "set output '/tmp/x.png'\n"));
  EXPECT_TRUE(has(script, "set multiplot layout 2,2 title 'dptrain: lr 0.1, bob''s run'")) << script;
  // Run 0's train loss against epochs, then against wall time (seconds: the runs last 90 s).
  EXPECT_TRUE(has(script, "$r0q0e << EOD\n1 0.5\n2 0.25\n3 0.125\nEOD\n")) << script;
  EXPECT_TRUE(has(script, "$r0q0t << EOD\n30 0.5\n60 0.25\n90 0.125\nEOD\n")) << script;
  EXPECT_TRUE(has(script, "$r1q4e << EOD\n0.5 0.707106781\n1.5 0.353553391\nEOD\n")) << script;
  EXPECT_TRUE(has(script, "set xlabel 'wall time (s)'"));
  EXPECT_FALSE(has(script, "$r0q1")) << "no test loss, no block";
  // Each run's curves in its colour: step and train loss in both loss panels, test accuracy in both
  // accuracy panels (these runs have no test loss, train accuracy or step accuracy).
  EXPECT_EQ(count(script, "lc rgb '#1f77b4'"), 6u) << script;
  EXPECT_EQ(count(script, "lc rgb '#d62728'"), 6u) << script;
  EXPECT_TRUE(has(script, "title 'bob''s run train'"));
  EXPECT_TRUE(has(script, "title 'lr 0.1 steps'"));
  EXPECT_TRUE(has(script, "title 'lr 0.1 test'"));
  EXPECT_FALSE(has(script, "nothing to draw")) << script;
  EXPECT_EQ(count(script, "\nplot "), 4u);
}

TEST(PlotScript, PiecesOfLineAreSeparatedAndLongRunsAreTimedInHours) {
  RunCurves run = run_of("long", 2, true, 4 * 3600.0);
  run.curve(Quantity::TrainLoss).push_back({{5, 9 * 3600.0, 0.01}});  // after a resume
  const std::string script = gnuplot_script({run}, "out.png");
  EXPECT_TRUE(has(script, "$r0q0e << EOD\n1 0.5\n2 0.25\n\n5 0.01\nEOD\n")) << script;
  EXPECT_TRUE(has(script, "$r0q0t << EOD\n4 0.5\n8 0.25\n\n9 0.01\nEOD\n")) << script;
  EXPECT_TRUE(has(script, "set xlabel 'wall time (h)'"));
  EXPECT_TRUE(has(gnuplot_script({run_of("mid", 2, true, 600)}, "o.png"), "set xlabel 'wall time (min)'"));
}

TEST(PlotScript, PanelsWithNothingToDrawSaySo) {
  const std::string script = gnuplot_script({run_of("old", 2, false)}, "old.png");
  EXPECT_FALSE(has(script, "q0t <<")) << "no wall times, no time blocks";
  EXPECT_EQ(count(script, "no wall-clock times: these records have no \"time\""), 2u) << script;
  EXPECT_EQ(count(script, "plot NaN notitle"), 2u);
}

TEST(PlotScript, QuotingKeepsNamesFromEndingTheString) {
  EXPECT_EQ(gnuplot_quote("plain"), "'plain'");
  EXPECT_EQ(gnuplot_quote("it's"), "'it''s'");
  EXPECT_EQ(gnuplot_quote("a\nb\tc"), "'a?b?c'");
  EXPECT_EQ(gnuplot_quote("\"$x\" \\n"), "'\"$x\" \\n'");
}

TEST(PlotScript, GnuplotDrawsTheScriptIntoAPng) {
  const std::string gnuplot = launcher::find_program("gnuplot");
  if (gnuplot.empty()) GTEST_SKIP() << "gnuplot is not installed (apt-get install gnuplot-nox)";
  test_util::TempDir dir;
  const std::string png = dir.file("runs.png"), script = dir.file("runs.gp");
  std::ofstream(script) << gnuplot_script({run_of("a", 3, true), run_of("b's", 4, false)}, png, {640, 480});
  launcher::ChildProcess child({gnuplot, script});
  ASSERT_TRUE(child.wait_for(60)) << "gnuplot took over a minute";
  ASSERT_EQ(child.exit_code(), 0);
  const std::string bytes = test_util::read_file(png);
  ASSERT_GT(bytes.size(), 5000u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(16, 8), std::string("\0\0\x02\x80\0\0\x01\xe0", 8)) << "640 x 480";
}

}  // namespace
}  // namespace dptrain
