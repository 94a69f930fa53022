// dptrain: the command-line entry point. Every subcommand registers its options from its own file;
// here the one that was given runs, and errors become one message and a non-zero exit code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "launcher/commands/cli_checks.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/data_command.h"
#include "launcher/commands/elastic_commands.h"
#include "launcher/commands/export_command.h"
#include "launcher/commands/quantize_command.h"
#include "launcher/commands/inspect_command.h"
#include "launcher/commands/plot_command.h"
#include "launcher/supervisor/launch_command.h"
#include "launcher/supervisor/run_status.h"
#include "launcher/workers.h"
#include "runtime/core/blas_kernels.h"
#include "runtime/core/errors.h"

using namespace dptrain;

namespace {

// A subcommand and what runs it.
using Dispatch = std::vector<std::pair<CLI::App*, std::function<int()>>>;

// Runs the parsed command of `dispatch` as a worker of the job. Library errors become one message
// (rank 0 prints it, every rank logs it) and exit code 1; anything unexpected, 3; a lost peer ends
// the worker at once. `exit_status` (dptrain train --exit-status) also records the error for the supervisor.
int run_as_worker(const Dispatch& dispatch, launcher::Workers& workers, const std::string& exit_status) {
  auto record = [&](const std::exception& e, const std::string& message) {
    launcher::record_train_error(exit_status, workers.rank(), e, message);
  };
  try {
    for (const auto& [command, run] : dispatch) {
      if (command->parsed()) return run();
    }
  } catch (const PeerLostError& e) {
    record(e, e.what());
    workers.exit_peer_lost(e.what());
  } catch (const Error& e) {
    record(e, e.what());
    workers.fail(e.what(), 1);
    return 1;
  } catch (const std::bad_alloc& e) {
    // Batch-sized buffers are checked before they are allocated (AllocationError names the key): this
    // one was not, so nothing says the batch is the cause.
    std::string command = "dptrain";
    for (const auto& entry : dispatch) {
      if (entry.first->parsed()) command += " " + entry.first->get_name();
    }
    const std::string message = "out of memory while running " + command +
                                " (an allocation outside the checked buffers failed; free memory or raise the "
                                "memory limit, or use a smaller data set or model)";
    record(e, message);
    workers.fail(message.c_str(), 1);
    return 1;
  } catch (const std::exception& e) {
    const std::string message = std::string("internal error: ") + e.what();
    record(e, message);
    workers.fail(message.c_str(), 3);
    return 3;
  }
  return 0;
}

// Starts the program again with OpenBLAS's AVX-512 kernels where OpenBLAS chose older ones on an AVX-512
// CPU (decide_blas_core). Returns 0 to run on (nothing to do, or the restart failed: one note on stderr),
// else the exit code of a refused DPTRAIN_BLAS_CORETYPE.
int choose_blas_kernels(char** argv) {
  try {
    const BlasCoreDecision decision = decide_this_blas_core();
    if (decision.action != BlasCoreAction::Restart) return 0;
    const std::string failure = restart_with_blas_core(decision, argv);
    std::fprintf(stderr,
                 "dptrain: note: could not restart with OPENBLAS_CORETYPE=%s (%s); running on OpenBLAS's %s "
                 "kernels\n",
                 decision.core.c_str(), failure.c_str(), decision.replaced.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "dptrain: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // First of all, before MPI_Init and before any thread starts: OpenBLAS reads OPENBLAS_CORETYPE only as
  // it loads, so a better choice needs a fresh start of the program.
  if (const int status = choose_blas_kernels(argv); status != 0) return status;
  CLI::App app{"dptrain: data-parallel CNN training. Run under mpirun or srun for several workers."};
  app.set_version_flag("--version",
                       std::string("dptrain ") + DPTRAIN_VERSION + " (backends: " + DPTRAIN_BACKENDS + ")");
  app.require_subcommand(1);

  launcher::TrainArgs train;
  CLI::App* train_cmd = launcher::add_train_command(app, train);
  launcher::EvalArgs eval;
  CLI::App* eval_cmd = launcher::add_eval_command(app, eval);
  launcher::PredictArgs predict;
  CLI::App* predict_cmd = launcher::add_predict_command(app, predict);
  launcher::BenchArgs bench;
  const launcher::BenchCommands bench_cmds = launcher::add_bench_commands(app, bench);
  launcher::DataConvertArgs data_convert;
  CLI::App* data_convert_cmd = launcher::add_data_commands(app, data_convert);
  launcher::ExportArgs export_args;
  CLI::App* export_cmd = launcher::add_export_command(app, export_args);
  launcher::QuantizeArgs quantize;
  CLI::App* quantize_cmd = launcher::add_quantize_command(app, quantize);
  launcher::InspectArgs inspect;
  CLI::App* inspect_cmd = launcher::add_inspect_command(app, inspect);
  launcher::LaunchArgs launch;
  CLI::App* launch_cmd = launcher::add_launch_command(app, launch);
  launcher::PlotArgs plot;
  CLI::App* plot_cmd = launcher::add_plot_command(app, plot);
  launcher::JoinArgs join;
  launcher::CtlArgs ctl;
  const launcher::ElasticCommands elastic_cmds = launcher::add_elastic_commands(app, join, ctl);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return launcher::report_parse_error(app, e);
  }
  // The supervisor is not a worker: it starts mpirun and never joins an MPI job itself.
  if (launch_cmd->parsed()) return launcher::run_launch(launch);
  // Nor is plotting: it reads files and runs gnuplot.
  if (plot_cmd->parsed()) return launcher::run_plot(plot);

  // Under mpirun or srun this joins the MPI job; otherwise it is a single worker.
  std::unique_ptr<launcher::Workers> workers;
  try {
    workers = std::make_unique<launcher::Workers>(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "dptrain: error: %s\n", e.what());
    return 1;
  }
  launcher::Workers& w = *workers;
  const Dispatch dispatch = {
      {train_cmd, [&] { return launcher::run_train(train, w); }},
      {eval_cmd, [&] { return launcher::run_eval(eval, w); }},
      {predict_cmd, [&] { return launcher::run_predict(predict, w); }},
      {export_cmd, [&] { return launcher::run_export(export_args, w); }},
      {quantize_cmd, [&] { return launcher::run_quantize(quantize, w); }},
      {inspect_cmd, [&] { return launcher::run_inspect(inspect); }},
      {elastic_cmds.join, [&] { return launcher::run_join(join, w); }},
      {elastic_cmds.ctl_leave, [&] { return launcher::run_ctl_leave(ctl); }},
      {elastic_cmds.ctl_status, [&] { return launcher::run_ctl_status(ctl); }},
      {bench_cmds.train, [&] { return launcher::run_bench_train(bench.train, w); }},
      {bench_cmds.layers, [&] { return launcher::run_bench_layers(bench.layers); }},
      {bench_cmds.allreduce, [&] { return launcher::run_bench_allreduce(bench.allreduce, w); }},
      {bench_cmds.peak, [&] { return launcher::run_bench_peak(bench.peak, w); }},
      {bench_cmds.predict, [&] { return launcher::run_bench_predict(bench.predict); }},
      {data_convert_cmd, [&] { return launcher::run_data_convert(data_convert); }},
  };
  return run_as_worker(dispatch, w, train_cmd->parsed() ? train.exit_status : std::string());
}
