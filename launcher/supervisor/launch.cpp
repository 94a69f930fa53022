// `dptrain launch`: runs `mpirun --enable-recovery ... dptrain train CONFIG --resume auto` and
// relaunches it from the newest checkpoint when the job fails, with the workers still placeable.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "launcher/commands/cli_checks.h"
#include "launcher/supervisor/child_process.h"
#include "launcher/supervisor/launch_command.h"
#include "launcher/supervisor/mpirun_job.h"
#include "launcher/supervisor/run_status.h"
#include "launcher/supervisor/slots.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/core/run_config.h"
#include "runtime/core/signals.h"
#include "runtime/report/metrics.h"

namespace dptrain::launcher {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string resume_description(const std::string& dir) {
  std::error_code ec;
  const std::vector<CheckpointFile> files =
      fs::is_directory(dir, ec) ? list_checkpoints(dir) : std::vector<CheckpointFile>{};
  if (files.empty()) return "starting from the beginning (no checkpoint in " + dir + " yet)";
  return "resuming from " + files[0].path + " (or the newest one that verifies)";
}

// --np and --min-np, checked before the config is read.
void check_worker_counts(const LaunchArgs& args) {
  if (args.np == 0) throw UsageError("--np must be at least 1");
  if (args.min_np == 0 || args.min_np > args.np) {
    throw UsageError("--min-np " + std::to_string(args.min_np) + " must be between 1 and --np (" +
                     std::to_string(args.np) + ")");
  }
}

// Checks the config before anything starts, and works out what every launch shares.
JobPlan plan_job(const LaunchArgs& args, const RunConfig& config) {
  if (config.checkpoint.dir.empty()) {
    throw ConfigError(args.config +
                      ": dptrain launch needs checkpoint.dir, or a relaunch would start over: set "
                      "`checkpoint: {dir: runs/NAME/ckpt}` in the config or pass --set checkpoint.dir=DIR");
  }
  JobPlan plan;
  plan.mpirun = find_program(args.mpirun);
  if (plan.mpirun.empty()) throw UsageError("--mpirun " + args.mpirun + ": not found (on PATH)");
  plan.executable = fs::read_symlink("/proc/self/exe").string();
  plan.checkpoint_dir = config.checkpoint.dir;
  plan.status_path = (fs::path(config.checkpoint.dir) / "launch-status").string();
  prepare_private_folder(config.checkpoint.dir, args.config + ": checkpoint.dir");
  available_slots(args);  // a hostfile that cannot be read is a mistake to report now
  return plan;
}

// What the supervisor does after a launch ended.
enum class NextStep { Relaunch, Finish };

// The launch loop: launch, read how the job ended, decide, wait, relaunch.
class Supervisor {
 public:
  Supervisor(const LaunchArgs& args, const RunConfig& config)
      : args_(args), config_(config), plan_(plan_job(args, config)) {
    if (!args.metrics.empty()) metrics_ = MetricsWriter(args.metrics);
  }

  int run() {
    StopRequests::install();
    for (size_t launch = 1;; ++launch) {
      if (config_.elastic.enabled) keep_name_server();
      if (launch_once(launch) == NextStep::Finish || !pause_before_relaunch()) break;
    }
    return finish();
  }

 private:
  size_t launches() const { return args_.max_restarts + 1; }

  // ompi-server runs for as long as the supervisor does; restarted when it died.
  void keep_name_server() {
    if (name_server_ && !name_server_->exited()) return;
    prepare_private_folder(config_.elastic.run_dir, args_.config + ": elastic.run_dir");
    const std::string uri_file = (fs::path(config_.elastic.run_dir) / "ompi-server.uri").string();
    name_server_ = start_name_server(plan_, uri_file);
    plan_.ompi_server = "file:" + uri_file;
  }

  NextStep launch_once(size_t launch) {
    const Slots slots = available_slots(args_);
    const size_t workers = std::min(args_.np, slots.count);
    if (workers < args_.min_np) {
      std::printf("dptrain launch: only %zu worker(s) can be placed (%s), fewer than --min-np %zu: giving up\n",
                  workers, slots.source.c_str(), args_.min_np);
      return NextStep::Finish;
    }
    const std::string resume = resume_description(plan_.checkpoint_dir);
    std::printf("dptrain launch: launch %zu/%zu: %zu worker(s) (%s), %s\n", launch, launches(), workers,
                slots.source.c_str(), resume.c_str());
    std::fflush(stdout);
    metrics_.write(MetricsRecord("launch")
                       .add("launch", launch)
                       .add("launches", launches())
                       .add("world_size", workers)
                       .add("slots", slots.source)
                       .add("resume", resume));
    std::error_code ec;
    fs::remove(plan_.status_path, ec);
    ++launched_;
    const LaunchEnd end = run_job_once(args_, plan_, workers);
    report(launch, end);
    return decide(launch, end);
  }

  void report(size_t launch, const LaunchEnd& end) {
    const std::string status = end.status ? to_string(*end.status)
                                          : "no status (a worker was killed or crashed before rank 0 "
                                            "could report; see mpirun's output above)";
    std::printf("dptrain launch: launch %zu ended after %.1f s: %s (mpirun exit %d)\n", launch, end.seconds,
                status.c_str(), end.mpirun_exit);
    metrics_.write(MetricsRecord("launch_end")
                       .add("launch", launch)
                       .add("status", status)
                       .add("mpirun_exit", end.mpirun_exit)
                       .add("seconds", end.seconds));
  }

  NextStep decide(size_t launch, const LaunchEnd& end) {
    if (end.status && end.status->finished()) {
      outcome_ = to_string(*end.status);
      code_ = 0;
      return NextStep::Finish;
    }
    if (StopRequests::count() > 0) {
      std::printf(
          "dptrain launch: stopped at your request, but the job did not confirm a checkpoint at the stop; "
          "the checkpoints already in %s are intact\n",
          plan_.checkpoint_dir.c_str());
      outcome_ = "stopped without a checkpoint";
      return NextStep::Finish;
    }
    if (end.status && end.status->outcome == JobOutcome::Refused) {
      std::printf("dptrain launch: a relaunch would fail the same way: giving up\n");
      return NextStep::Finish;
    }
    if (launch >= launches()) {
      std::printf("dptrain launch: no restarts left (--max-restarts %zu): giving up\n", args_.max_restarts);
      return NextStep::Finish;
    }
    return NextStep::Relaunch;
  }

  // Waits --restart-delay; false when a stop request came meanwhile.
  bool pause_before_relaunch() {
    std::printf("dptrain launch: relaunching in %g s\n", args_.restart_delay);
    std::fflush(stdout);
    const Clock::time_point pause = Clock::now();
    while (seconds_since(pause) < args_.restart_delay && StopRequests::count() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (StopRequests::count() == 0) return true;
    std::printf("dptrain launch: %s between launches: not relaunching\n",
                stop_signal_name(StopRequests::first_signal()));
    outcome_ = "stopped between launches";
    return false;
  }

  int finish() {
    if (name_server_ && !name_server_->terminate(5.0)) {
      std::fprintf(stderr, "dptrain launch: ompi-server (pid %d) did not end\n", static_cast<int>(name_server_->pid()));
    }
    std::printf("dptrain launch: %s after %zu launch(es) (%zu restart(s)) in %.1f s; checkpoints in %s\n",
                outcome_.c_str(), launched_, launched_ > 0 ? launched_ - 1 : 0, seconds_since(start_),
                plan_.checkpoint_dir.c_str());
    metrics_.write(MetricsRecord("supervisor_end")
                       .add("outcome", outcome_)
                       .add("launches", launched_)
                       .add("seconds", seconds_since(start_))
                       .add("exit_code", code_));
    return code_;
  }

  const LaunchArgs& args_;
  const RunConfig& config_;
  JobPlan plan_;
  MetricsWriter metrics_;
  std::unique_ptr<ChildProcess> name_server_;
  const Clock::time_point start_ = Clock::now();
  size_t launched_ = 0;
  std::string outcome_ = "gave up";
  int code_ = 1;
};

int supervise(const LaunchArgs& args) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // its lines interleave with mpirun's output in order
  check_worker_counts(args);
  const RunConfig config = RunConfig::load(args.config, args.overrides);
  return Supervisor(args, config).run();
}

}  // namespace

CLI::App* add_launch_command(CLI::App& app, LaunchArgs& args) {
  auto* cmd = app.add_subcommand(
      "launch", "Run the training job under mpirun and relaunch it from its newest checkpoint when it fails");
  cmd->add_option("config", args.config, "YAML run config (checkpoint.dir required)")->required();
  cmd->add_option("--np", args.np, "Workers to start")->required()->check(in_range(1, kNoLimit));
  cmd->add_option("--min-np", args.min_np, "Give up when fewer workers can be placed (default 1)")
      ->check(in_range(1, kNoLimit));
  cmd->add_option("--max-restarts", args.max_restarts, "Relaunches after failures (default 3)");
  cmd->add_option("--hostfile", args.hostfile, "Open MPI hostfile; its slots= are re-read before every launch");
  cmd->add_option("--mpirun", args.mpirun, "mpirun program (default: mpirun on PATH)");
  cmd->add_option("--set", args.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  cmd->add_option("--metrics", args.metrics, "The job's metrics, and one record per launch, in FILE.jsonl");
  cmd->add_option("--log-dir", args.log_dir, "Every worker also logs to DIR/rank-<rank>.log");
  cmd->add_option("--progress", args.progress, "Progress while an epoch runs: auto, terminal, plain, off")
      ->check(CLI::IsMember({"auto", "terminal", "plain", "off"}));
  cmd->add_option("--stop-timeout", args.stop_timeout, "Seconds the workers get to save and stop (default 300)")
      ->check(seconds(Zero::Allowed));
  cmd->add_option("--grace", args.grace_seconds,
                  "Seconds mpirun may run on after the job reported its end (default 30)")
      ->check(seconds(Zero::Allowed));
  cmd->add_option("--restart-delay", args.restart_delay, "Seconds between a failure and the relaunch (default 2)")
      ->check(seconds(Zero::Allowed));
  cmd->add_option("mpirun_args", args.mpirun_args, "After --: more mpirun options, e.g. -- --bind-to none");
  return cmd;
}

int run_launch(const LaunchArgs& args) {
  try {
    return supervise(args);
  } catch (const Error& e) {
    std::fprintf(stderr, "dptrain launch: error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dptrain launch: internal error: %s\n", e.what());
  }
  return 1;
}

}  // namespace dptrain::launcher
