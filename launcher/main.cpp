// dptrain: the command-line entry point. Library code throws; here errors become one message
// and a non-zero exit code.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <memory>

#include "launcher/commands/commands.h"
#include "launcher/commands/data_command.h"
#include "launcher/commands/elastic_commands.h"
#include "launcher/commands/inspect_command.h"
#include "launcher/supervisor/launch_command.h"
#include "launcher/workers.h"
#include "runtime/core/errors.h"

using namespace dptrain;

int main(int argc, char** argv) {
  CLI::App app{"dptrain: data-parallel CNN training. Run under mpirun or srun for several workers."};
  app.set_version_flag("--version", std::string("dptrain ") + DPTRAIN_VERSION + " (backends: " + DPTRAIN_BACKENDS + ")");
  app.require_subcommand(1);

  launcher::TrainArgs train;
  auto* train_cmd = app.add_subcommand("train", "Train a model from a YAML config");
  train_cmd->add_option("config", train.config, "YAML run config, e.g. configs/fashion_mnist.yaml")->required();
  train_cmd->add_option("--set", train.overrides, "Override a config key: --set train.epochs=1 (repeatable)")
      ->allow_extra_args(false);
  train_cmd->add_option("--metrics", train.metrics, "Append JSON-lines metrics to FILE");
  train_cmd->add_option("--progress", train.progress, "Progress while an epoch runs: auto, terminal, plain, off")
      ->check(CLI::IsMember({"auto", "terminal", "plain", "off"}));
  train_cmd->add_flag("--dry-run", train.dry_run, "Check config and data, print the plan, train nothing");
  train_cmd->add_option("--log-dir", train.log_dir, "Every worker also logs to DIR/rank-<rank>.log");
  train_cmd->add_option("--resume", train.resume,
                        "Continue from a checkpoint: auto (the newest valid one in checkpoint.dir; none: start) or FILE");
  train_cmd->add_option("--exit-status", train.exit_status,
                        "Rank 0 writes how the run ended to FILE: completed, stopped ..., failed: ...");
  train_cmd->add_option("--timeline", train.timeline,
                        "Write every worker's steps, all-reduces and waits to FILE.json (Chrome trace / Perfetto)");

  launcher::EvalArgs eval;
  auto* eval_cmd = app.add_subcommand("eval", "Test loss and accuracy of a checkpoint");
  eval_cmd->add_option("config", eval.config, "YAML run config (default: the config stored in the checkpoint)");
  eval_cmd->add_option("--checkpoint", eval.checkpoint, "Checkpoint file (.h5)")->required();
  eval_cmd->add_option("--set", eval.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  eval_cmd->add_flag("--json", eval.json, "Print one JSON object");

  auto* bench_cmd = app.add_subcommand("bench", "Measure speed");
  bench_cmd->require_subcommand(1);
  launcher::BenchTrainArgs bench_train;
  auto* bt = bench_cmd->add_subcommand("train", "Training throughput (images/s) of a config's model");
  bt->add_option("config", bench_train.config, "YAML run config")->required();
  bt->add_option("--set", bench_train.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  bt->add_option("--steps", bench_train.steps, "Timed steps per repeat")->check(CLI::PositiveNumber);
  bt->add_option("--warmup", bench_train.warmup, "Untimed epochs of --steps steps before timing (default 1)");
  bt->add_option("--repeats", bench_train.repeats, "How many timed repeats")->check(CLI::PositiveNumber);
  bt->add_option("--data", bench_train.data, "synthetic (default) or config (the config's own data)")
      ->check(CLI::IsMember({"synthetic", "config"}));
  bt->add_flag("--json", bench_train.json, "Print one JSON object per repeat");
  launcher::BenchLayersArgs bench_layers;
  auto* bl = bench_cmd->add_subcommand("layers", "Forward and backward time of every layer");
  bl->add_option("config", bench_layers.config, "YAML run config")->required();
  bl->add_option("--set", bench_layers.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  bl->add_option("--batch", bench_layers.batch, "Batch size (default: train.batch_size)");
  bl->add_option("--iterations", bench_layers.iterations, "Timed iterations")->check(CLI::PositiveNumber);
  launcher::BenchAllreduceArgs bench_allreduce;
  auto* ba = bench_cmd->add_subcommand("allreduce", "Gradient all-reduce time and bandwidth, 4 KiB to 64 MiB");
  ba->add_option("--min-bytes", bench_allreduce.min_bytes, "Smallest message (default 4096)")
      ->check(CLI::PositiveNumber);
  ba->add_option("--max-bytes", bench_allreduce.max_bytes, "Largest message (default 67108864)")
      ->check(CLI::PositiveNumber);
  ba->add_option("--iterations", bench_allreduce.iterations, "Timed repetitions per size")->check(CLI::PositiveNumber);
  ba->add_option("--bucket-mb", bench_allreduce.bucket_mb, "Bucket size of the bucketed column, MiB (default 1)")
      ->check(CLI::PositiveNumber);

  launcher::DataConvertArgs data_convert;
  CLI::App* data_convert_cmd = launcher::add_data_commands(app, data_convert);
  launcher::InspectArgs inspect_args;
  CLI::App* inspect_cmd = launcher::add_inspect_command(app, inspect_args);
  launcher::LaunchArgs launch_args;
  CLI::App* launch_cmd = launcher::add_launch_command(app, launch_args);
  launcher::JoinArgs join_args;
  launcher::CtlArgs ctl_args;
  const launcher::ElasticCommands elastic_cmds = launcher::add_elastic_commands(app, join_args, ctl_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // The supervisor is not a worker: it starts mpirun and never joins an MPI job itself.
  if (launch_cmd->parsed()) return launcher::run_launch(launch_args);

  // Under mpirun or srun this joins the MPI job; otherwise it is a single worker.
  std::unique_ptr<launcher::Workers> workers;
  try {
    workers = std::make_unique<launcher::Workers>(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "dptrain: error: %s\n", e.what());
    return 1;
  }
  try {
    if (train_cmd->parsed()) return launcher::run_train(train, *workers);
    if (eval_cmd->parsed()) return launcher::run_eval(eval, *workers);
    if (inspect_cmd->parsed()) return launcher::run_inspect(inspect_args);
    if (elastic_cmds.join->parsed()) return launcher::run_join(join_args, *workers);
    if (elastic_cmds.ctl_leave->parsed()) return launcher::run_ctl_leave(ctl_args);
    if (elastic_cmds.ctl_status->parsed()) return launcher::run_ctl_status(ctl_args);
    if (bt->parsed()) return launcher::run_bench_train(bench_train, *workers);
    if (bl->parsed()) return launcher::run_bench_layers(bench_layers);
    if (data_convert_cmd->parsed()) return launcher::run_data_convert(data_convert);
    if (ba->parsed()) return launcher::run_bench_allreduce(bench_allreduce, *workers);
  } catch (const PeerLostError& e) {
    if (train_cmd->parsed()) launcher::record_train_error(train.exit_status, workers->rank(), e, e.what());
    workers->exit_peer_lost(e.what());
  } catch (const Error& e) {
    if (train_cmd->parsed()) launcher::record_train_error(train.exit_status, workers->rank(), e, e.what());
    workers->fail(e.what(), 1);
    return 1;
  } catch (const std::bad_alloc& e) {
    if (train_cmd->parsed()) launcher::record_train_error(train.exit_status, workers->rank(), e, "out of memory");
    workers->fail("out of memory (try a smaller train.batch_size)", 1);
    return 1;
  } catch (const std::exception& e) {
    if (train_cmd->parsed()) {
      launcher::record_train_error(train.exit_status, workers->rank(), e, std::string("internal error: ") + e.what());
    }
    workers->fail((std::string("internal error: ") + e.what()).c_str(), 3);
    return 3;
  }
  return 0;
}
