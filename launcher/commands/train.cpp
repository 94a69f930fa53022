#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "comm/communicator.h"
#include "comm/mpi/mpi_communicator.h"
#include "comm/timeline_merge.h"
#include "launcher/commands/commands.h"
#include "launcher/stop_signals.h"
#include "launcher/supervisor/run_status.h"
#include "launcher/workers.h"
#include "runtime/core/blas_kernels.h"
#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/core/run_config.h"
#include "runtime/core/thread_limits.h"
#include "runtime/elastic/controller.h"
#include "runtime/report/timeline.h"
#include "runtime/train/training_run.h"

namespace dptrain::launcher {

namespace {

// --progress auto|terminal|plain|off.
ProgressStyle progress_style(const std::string& choice) {
  if (choice == "auto") return detect_progress_style(stdout);
  if (choice == "terminal") return ProgressStyle::Terminal;
  if (choice == "plain") return ProgressStyle::Plain;
  return ProgressStyle::Off;
}

// Refuses, before anything is trained, a checkpoint.dir or elastic.run_dir that other users can write: they
// could plant requests or replace checkpoints there. Folders that do not exist yet are created owner-only later.
void check_run_folders(const RunConfig& config) {
  check_private_folder(config.checkpoint.dir, config.file + ": checkpoint.dir");
  if (config.elastic.run_dir != config.checkpoint.dir) {
    check_private_folder(config.elastic.run_dir, config.file + ": elastic.run_dir");
  }
}

}  // namespace

int run_train(const TrainArgs& args, Workers& workers) {
  // First of all, so that a stop signal during set-up (which may block) ends the process at once.
  const std::atomic<int>* stop_signal = args.dry_run ? nullptr : &install_stop_handlers(workers.rank() == 0);
  if (!args.log_dir.empty()) workers.open_rank_log(args.log_dir);
  if (!args.timeline.empty() && workers.rank() == 0) check_timeline_path(args.timeline);
  RunConfig config = RunConfig::load(args.config, args.overrides);
  check_run_folders(config);
  if (config.threads == 0) config.threads = default_thread_count(workers.local().size);
  check_thread_limits(config.threads, config.file + ": threads");  // before any thread pool starts
  const Deadline deadline(static_cast<int64_t>(config.comm.timeout_seconds * 1000));
  const std::string world = workers.describe(config.threads, deadline);
  if (workers.rank() == 0) std::printf("%s\n", world.c_str());
  if (std::FILE* log = workers.rank_log()) std::fprintf(log, "%s\n", world.c_str());
  const std::string blas = "OpenBLAS core: " + describe_this_blas_core();
  if (workers.rank() == 0) std::printf("%s\n", blas.c_str());
  if (std::FILE* log = workers.rank_log()) std::fprintf(log, "%s\n", blas.c_str());
  // From here on a worker that dies is named by every other one within comm.heartbeat_seconds.
  const std::string heartbeats = workers.monitor_peers(config.comm.heartbeat_seconds, deadline);
  if (!heartbeats.empty() && workers.rank() == 0) std::printf("%s\n", heartbeats.c_str());

  TrainerOptions options;
  options.metrics_path = args.metrics;
  options.progress = progress_style(args.progress);
  options.rank_log = workers.rank_log();
  options.workers_on_node = workers.local().size;
  options.stop_signal = stop_signal;
  std::unique_ptr<Timeline> timeline;
  if (!args.timeline.empty()) timeline = std::make_unique<Timeline>();
  options.timeline = timeline.get();
  // Workers leave (SIGUSR1, dptrain ctl leave) and join (elastic.enabled) between epochs.
  std::unique_ptr<ElasticController> elastic;
  auto* mpi = dynamic_cast<MpiCommunicator*>(&workers.comm());
  if (config.elastic.enabled && !mpi) {
    throw ConfigError(config.file + ": elastic.enabled needs an MPI job: start it with mpirun (-np 1 for one worker) "
                      "or dptrain launch");
  }
  if (mpi && !args.dry_run) {
    elastic = std::make_unique<ElasticController>(config, *mpi, &install_leave_handler());
    options.boundary = elastic.get();
  }
  // The communicator training runs on: the elastic controller's current one, or the job's own.
  auto comm = [&]() -> Communicator& { return elastic ? elastic->comm() : workers.comm(); };
  TrainingRun run(config, comm(), options);
  if (args.dry_run) {
    if (workers.rank() == 0) std::printf("%s\nconfig OK (dry run: nothing trained)\n", run.describe().c_str());
    return 0;
  }
  if (!args.resume.empty()) run.resume(args.resume);
  if (elastic) elastic->publish(run.elastic_host());
  if (timeline) start_timeline(*timeline, workers.comm(), deadline);
  stop_after_a_step_from_now();
  const RunOutcome outcome = run.run();
  if (timeline && outcome.end != RunEnd::Left) {
    const size_t events = write_merged_timeline(*timeline, comm(), args.timeline, deadline);
    if (workers.rank() == 0) {
      std::printf("timeline: %zu events from %zu worker(s) in %s (open it in https://ui.perfetto.dev)\n", events,
                  comm().size() + timeline->departed().size(), args.timeline.c_str());
    }
  }
  // For dptrain launch (rank 0 stays rank 0 and never leaves): how the run ended.
  if (workers.rank() == 0 && outcome.end != RunEnd::Left) {
    write_run_status(args.exit_status, outcome.end == RunEnd::Completed
                                           ? RunStatus::completed()
                                           : RunStatus::stopped(outcome.signal, outcome.reason));
  }
  return finish_run(outcome, elastic.get(), config);
}

CLI::App* add_train_command(CLI::App& app, TrainArgs& args) {
  auto* cmd = app.add_subcommand("train", "Train a model from a YAML config");
  cmd->add_option("config", args.config, "YAML run config, e.g. configs/fashion_mnist.yaml")->required();
  cmd->add_option("--set", args.overrides, "Override a config key: --set train.epochs=1 (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--metrics", args.metrics, "Append JSON-lines metrics to FILE");
  cmd->add_option("--progress", args.progress, "Progress while an epoch runs: auto, terminal, plain, off")
      ->check(CLI::IsMember({"auto", "terminal", "plain", "off"}));
  cmd->add_flag("--dry-run", args.dry_run, "Check config and data, print the plan, train nothing");
  cmd->add_option("--log-dir", args.log_dir, "Every worker also logs to DIR/rank-<rank>.log");
  cmd->add_option("--resume", args.resume,
                  "Continue from a checkpoint: auto (the newest valid one in checkpoint.dir; none: start) or FILE");
  cmd->add_option("--exit-status", args.exit_status,
                  "Rank 0 writes how the run ended to FILE: completed, stopped ..., failed: ...");
  cmd->add_option("--timeline", args.timeline,
                  "Write every worker's steps, all-reduces and waits to FILE.json (Chrome trace / Perfetto)");
  return cmd;
}

}  // namespace dptrain::launcher
