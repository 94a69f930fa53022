// `dptrain join`: workers that join a running elastic job at its next epoch boundary.
#include <chrono>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "comm/mpi/mpi_communicator.h"
#include "comm/timeline_merge.h"
#include "launcher/commands/cli_checks.h"
#include "launcher/commands/elastic_commands.h"
#include "launcher/stop_signals.h"
#include "launcher/workers.h"
#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/core/run_config.h"
#include "runtime/core/thread_limits.h"
#include "runtime/elastic/controller.h"
#include "runtime/report/timeline.h"
#include "runtime/train/training_run.h"

namespace dptrain::launcher {

ElasticCommands add_elastic_commands(CLI::App& app, JoinArgs& join, CtlArgs& ctl) {
  ElasticCommands commands;
  commands.join = app.add_subcommand(
      "join", "Join a running elastic job with this mpirun's workers (mpirun -np K --enable-recovery --ompi-server "
              "file:DIR/ompi-server.uri dptrain join --run-dir DIR)");
  commands.join->add_option("--run-dir", join.run_dir, "The running job's elastic.run_dir")->required();
  commands.join->add_option("--wait", join.wait_seconds, "Longest wait for the job's next epoch boundary, seconds")
      ->check(seconds(Zero::Refused));
  commands.join->add_option("--log-dir", join.log_dir, "Every joining worker also logs to DIR/rank-<rank>.log");

  CLI::App* ctl_cmd = app.add_subcommand("ctl", "Requests to a running job");
  ctl_cmd->require_subcommand(1);
  commands.ctl_leave = ctl_cmd->add_subcommand("leave", "Ask worker --rank to leave at the next epoch boundary");
  commands.ctl_leave->add_option("--run-dir", ctl.run_dir, "The running job's elastic.run_dir")->required();
  commands.ctl_leave->add_option("--rank", ctl.rank, "The worker's current rank (see ctl status)")
      ->required()
      ->check(in_range(0, kNoLimit));
  commands.ctl_status = ctl_cmd->add_subcommand("status", "The running job's current workers");
  commands.ctl_status->add_option("--run-dir", ctl.run_dir, "The running job's elastic.run_dir")->required();
  return commands;
}

int run_join(const JoinArgs& args, Workers& workers) {
  auto* mpi = dynamic_cast<MpiCommunicator*>(&workers.comm());
  if (!mpi) {
    throw UsageError("dptrain join runs under mpirun: mpirun -np K --enable-recovery --ompi-server file:" +
                     args.run_dir + "/ompi-server.uri dptrain join --run-dir " + args.run_dir);
  }
  if (!args.log_dir.empty()) workers.open_rank_log(args.log_dir);
  check_private_folder(args.run_dir, "--run-dir");
  const ElasticDir dir(args.run_dir);
  if (!dir.port()) {
    throw UsageError(args.run_dir + " has no running elastic job (" + dir.path("port") +
                     " is missing): start the job with elastic.enabled: true and elastic.run_dir (or checkpoint.dir) " +
                     args.run_dir);
  }
  RunConfig config = RunConfig::load(dir.config_path());
  if (config.threads == 0) config.threads = default_thread_count(workers.local().size);
  check_thread_limits(config.threads, config.file + ": threads");  // before any thread pool starts

  TrainerOptions options;
  options.progress = ProgressStyle::Off;
  options.rank_log = workers.rank_log();
  options.workers_on_node = workers.local().size;
  options.stop_signal = &install_stop_handlers(false);
  ElasticController elastic(config, *mpi, &install_leave_handler());
  options.boundary = &elastic;
  TrainingRun run(config, elastic.comm(), options);
  const std::string refusal =
      elastic.join(run.elastic_host(), std::chrono::seconds(static_cast<int64_t>(args.wait_seconds)));
  if (!refusal.empty()) {
    if (workers.rank() == 0) std::fprintf(stderr, "dptrain join: not joined: %s\n", refusal.c_str());
    return kExitNotJoined;
  }
  stop_after_a_step_from_now();
  const RunOutcome outcome = run.run();
  // The job keeps a timeline (the hand-over said so): this worker's events go to rank 0's file.
  if (elastic.joined_timeline() && outcome.end != RunEnd::Left) {
    write_merged_timeline(*elastic.joined_timeline(), elastic.comm(), "",
                          Deadline(static_cast<int64_t>(config.comm.timeout_seconds * 1000)));
  }
  return finish_run(outcome, &elastic, config);
}

}  // namespace dptrain::launcher
