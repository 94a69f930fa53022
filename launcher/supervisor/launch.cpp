// `dptrain launch`: runs `mpirun --enable-recovery ... dptrain train CONFIG --resume auto` and
// relaunches it from the newest checkpoint when the job fails, with the workers still placeable.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "launcher/supervisor/child_process.h"
#include "launcher/supervisor/launch_command.h"
#include "launcher/supervisor/slots.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "runtime/report/metrics.h"
#include "runtime/core/run_config.h"

namespace dptrain::launcher {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<int> stop_requests{0};
std::atomic<int> first_stop_signal{0};

extern "C" void on_supervisor_signal(int signal) {
  int none = 0;
  first_stop_signal.compare_exchange_strong(none, signal);
  stop_requests.fetch_add(1);
}

void install_supervisor_handlers() {
  static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");
  struct sigaction action {};
  action.sa_handler = on_supervisor_signal;
  sigemptyset(&action.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGUSR2}) sigaction(s, &action, nullptr);
}

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGUSR2:
      return "SIGUSR2";
    default:
      return "a signal";
  }
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

// How one launch ended.
struct LaunchEnd {
  std::string status;   // the job's status line ("" when it wrote none)
  int mpirun_exit = 0;  // mpirun's exit code (128 + N: signal N)
  double seconds = 0;
};

// Everything that stays the same across launches.
struct Plan {
  std::string mpirun;       // resolved path
  std::string executable;   // this dptrain binary
  std::string status_path;  // checkpoint.dir/launch-status
  std::string checkpoint_dir;
  std::string ompi_server;  // "file:RUN_DIR/ompi-server.uri", or "" without elastic
};

std::vector<std::string> mpirun_command(const LaunchArgs& args, const Plan& plan, size_t workers) {
  std::vector<std::string> argv = {plan.mpirun, "--enable-recovery", "-np", std::to_string(workers)};
  if (!args.hostfile.empty()) argv.insert(argv.end(), {"--hostfile", args.hostfile});
  if (!plan.ompi_server.empty()) {
    argv.insert(argv.end(), {"--ompi-server", plan.ompi_server});
    // Joiners may share cores with the job: waiting workers then yield instead of spinning, unless
    // the user chose otherwise.
    const bool chosen = std::getenv("OMPI_MCA_mpi_yield_when_idle") != nullptr ||
                        std::find(args.mpirun_args.begin(), args.mpirun_args.end(), "mpi_yield_when_idle") !=
                            args.mpirun_args.end();
    if (!chosen) argv.insert(argv.end(), {"--mca", "mpi_yield_when_idle", "1"});
  }
  argv.insert(argv.end(), args.mpirun_args.begin(), args.mpirun_args.end());
  argv.insert(argv.end(), {plan.executable, "train", args.config, "--resume", "auto", "--exit-status", plan.status_path,
                           "--progress", args.progress});
  for (const std::string& o : args.overrides) argv.insert(argv.end(), {"--set", o});
  if (!args.metrics.empty()) argv.insert(argv.end(), {"--metrics", args.metrics});
  if (!args.log_dir.empty()) argv.insert(argv.end(), {"--log-dir", args.log_dir});
  return argv;
}

// Runs mpirun once and watches it: forwards a stop request as SIGUSR2 (checkpoint and stop), ends
// it on a second request or when it outlives the stop timeout or the grace after the job's status.
LaunchEnd run_once(const LaunchArgs& args, const Plan& plan, size_t workers) {
  const Clock::time_point start = Clock::now();
  ChildProcess mpirun(mpirun_command(args, plan, workers));
  bool forwarded = false, ended_by_us = false;
  int requests_seen = 0;
  Clock::time_point forwarded_at, stop_deadline, status_seen;
  bool have_status = false;
  while (!mpirun.exited()) {
    const int requests = stop_requests.load();
    if (requests >= 1 && !forwarded) {
      forwarded = true;
      requests_seen = requests;
      forwarded_at = Clock::now();
      stop_deadline =
          Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.stop_timeout));
      std::printf(
          "dptrain launch: %s: asking the workers to save a checkpoint and stop (SIGUSR2 to mpirun); "
          "signal again to end them at once\n",
          signal_name(first_stop_signal.load()));
      std::fflush(stdout);
      mpirun.send(SIGUSR2);
    }
    if (forwarded && requests > requests_seen) {
      // Copies of one request arrive together (timeout(1), for one, signals its child and then its
      // whole process group); a request that comes later is a second one.
      if (seconds_since(forwarded_at) < 0.5) {
        requests_seen = requests;
      } else {
        std::printf("dptrain launch: asked twice: ending the job now\n");
        ended_by_us = true;
      }
    }
    if (!ended_by_us && forwarded && Clock::now() > stop_deadline) {
      std::printf("dptrain launch: the workers did not stop within %g s (--stop-timeout): ending the job\n",
                  args.stop_timeout);
      ended_by_us = true;
    }
    if (!have_status && fs::exists(plan.status_path)) {
      have_status = true;
      status_seen = Clock::now();
    }
    if (!ended_by_us && have_status && seconds_since(status_seen) > args.grace_seconds) {
      std::printf(
          "dptrain launch: mpirun still runs %g s after the job reported \"%s\" (a worker stuck in "
          "MPI_Finalize?): ending it\n",
          args.grace_seconds, read_run_status(plan.status_path).c_str());
      ended_by_us = true;
    }
    if (ended_by_us) {
      std::fflush(stdout);
      if (!mpirun.terminate(10.0)) {
        std::fprintf(stderr, "dptrain launch: mpirun (pid %d) did not end after SIGTERM and SIGKILL\n",
                     static_cast<int>(mpirun.pid()));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {read_run_status(plan.status_path), mpirun.exit_code(), seconds_since(start)};
}

// Starts ompi-server, the name service through which `dptrain join` jobs find this one, and waits
// (bounded) for it to write its URI file.
std::unique_ptr<ChildProcess> start_name_server(const Plan& plan, const std::string& uri_file) {
  fs::remove(uri_file);
  std::string program = (fs::path(plan.mpirun).parent_path() / "ompi-server").string();
  if (find_program(program).empty()) program = "ompi-server";
  auto server = std::make_unique<ChildProcess>(std::vector<std::string>{program, "--no-daemonize", "-r", uri_file});
  const Clock::time_point start = Clock::now();
  while (!(fs::exists(uri_file) && fs::file_size(uri_file) > 0)) {
    if (server->exited()) {
      throw UsageError("ompi-server exited (code " + std::to_string(server->exit_code()) + ") before writing " +
                       uri_file);
    }
    if (seconds_since(start) > 10) throw UsageError("ompi-server did not write " + uri_file + " within 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("dptrain launch: ompi-server (pid %d) publishes the job for joiners: --ompi-server file:%s\n",
              static_cast<int>(server->pid()), uri_file.c_str());
  return server;
}

std::string resume_description(const std::string& dir) {
  std::error_code ec;
  const std::vector<CheckpointFile> files =
      fs::is_directory(dir, ec) ? list_checkpoints(dir) : std::vector<CheckpointFile>{};
  if (files.empty()) return "starting from the beginning (no checkpoint in " + dir + " yet)";
  return "resuming from " + files[0].path + " (or the newest one that verifies)";
}

int supervise(const LaunchArgs& args) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // its lines interleave with mpirun's output in order
  if (args.np == 0) throw UsageError("--np must be at least 1");
  if (args.min_np == 0 || args.min_np > args.np) {
    throw UsageError("--min-np " + std::to_string(args.min_np) + " must be between 1 and --np (" +
                     std::to_string(args.np) + ")");
  }
  const RunConfig config = RunConfig::load(args.config, args.overrides);
  if (config.checkpoint.dir.empty()) {
    throw ConfigError(args.config +
                      ": dptrain launch needs checkpoint.dir, or a relaunch would start over: set "
                      "`checkpoint: {dir: runs/NAME/ckpt}` in the config or pass --set checkpoint.dir=DIR");
  }
  Plan plan;
  plan.mpirun = find_program(args.mpirun);
  if (plan.mpirun.empty()) throw UsageError("--mpirun " + args.mpirun + ": not found (on PATH)");
  plan.executable = fs::read_symlink("/proc/self/exe").string();
  plan.checkpoint_dir = config.checkpoint.dir;
  plan.status_path = (fs::path(config.checkpoint.dir) / "launch-status").string();
  std::error_code ec;
  fs::create_directories(config.checkpoint.dir, ec);
  if (ec) throw ConfigError("checkpoint.dir " + config.checkpoint.dir + ": cannot create the folder: " + ec.message());
  available_slots(args);  // a hostfile that cannot be read is a mistake to report now

  install_supervisor_handlers();
  MetricsWriter metrics = args.metrics.empty() ? MetricsWriter() : MetricsWriter(args.metrics);
  std::unique_ptr<ChildProcess> name_server;
  const Clock::time_point start = Clock::now();
  const size_t launches = args.max_restarts + 1;
  std::string outcome = "gave up";
  int code = 1;
  size_t launched = 0;
  for (size_t launch = 1;; ++launch) {
    if (config.elastic.enabled && (!name_server || name_server->exited())) {
      fs::create_directories(config.elastic.run_dir, ec);
      if (ec)
        throw ConfigError("elastic.run_dir " + config.elastic.run_dir + ": cannot create the folder: " + ec.message());
      const std::string uri_file = (fs::path(config.elastic.run_dir) / "ompi-server.uri").string();
      name_server = start_name_server(plan, uri_file);
      plan.ompi_server = "file:" + uri_file;
    }
    const Slots slots = available_slots(args);
    const size_t workers = std::min(args.np, slots.count);
    if (workers < args.min_np) {
      std::printf("dptrain launch: only %zu worker(s) can be placed (%s), fewer than --min-np %zu: giving up\n",
                  workers, slots.source.c_str(), args.min_np);
      break;
    }
    const std::string resume = resume_description(plan.checkpoint_dir);
    std::printf("dptrain launch: launch %zu/%zu: %zu worker(s) (%s), %s\n", launch, launches, workers,
                slots.source.c_str(), resume.c_str());
    std::fflush(stdout);
    metrics.write(MetricsRecord("launch")
                      .add("launch", launch)
                      .add("launches", launches)
                      .add("world_size", workers)
                      .add("slots", slots.source)
                      .add("resume", resume));
    fs::remove(plan.status_path, ec);
    ++launched;
    const LaunchEnd end = run_once(args, plan, workers);
    const std::string status = end.status.empty() ? "no status (a worker was killed or crashed before rank 0 "
                                                    "could report; see mpirun's output above)"
                                                  : end.status;
    std::printf("dptrain launch: launch %zu ended after %.1f s: %s (mpirun exit %d)\n", launch, end.seconds,
                status.c_str(), end.mpirun_exit);
    metrics.write(MetricsRecord("launch_end")
                      .add("launch", launch)
                      .add("status", status)
                      .add("mpirun_exit", end.mpirun_exit)
                      .add("seconds", end.seconds));
    if (end.status == "completed" || starts_with(end.status, "stopped")) {
      outcome = end.status == "completed" ? "completed" : end.status;
      code = 0;
      break;
    }
    if (stop_requests.load() > 0) {
      std::printf(
          "dptrain launch: stopped at your request, but the job did not confirm a checkpoint at the stop; "
          "the checkpoints already in %s are intact\n",
          plan.checkpoint_dir.c_str());
      outcome = "stopped without a checkpoint";
      break;
    }
    if (starts_with(end.status, "refused:")) {
      std::printf("dptrain launch: a relaunch would fail the same way: giving up\n");
      break;
    }
    if (launch >= launches) {
      std::printf("dptrain launch: no restarts left (--max-restarts %zu): giving up\n", args.max_restarts);
      break;
    }
    std::printf("dptrain launch: relaunching in %g s\n", args.restart_delay);
    std::fflush(stdout);
    const Clock::time_point pause = Clock::now();
    while (seconds_since(pause) < args.restart_delay && stop_requests.load() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stop_requests.load() > 0) {
      std::printf("dptrain launch: %s between launches: not relaunching\n", signal_name(first_stop_signal.load()));
      outcome = "stopped between launches";
      break;
    }
  }
  if (name_server && !name_server->terminate(5.0)) {
    std::fprintf(stderr, "dptrain launch: ompi-server (pid %d) did not end\n", static_cast<int>(name_server->pid()));
  }
  std::printf("dptrain launch: %s after %zu launch(es) (%zu restart(s)) in %.1f s; checkpoints in %s\n",
              outcome.c_str(), launched, launched > 0 ? launched - 1 : 0, seconds_since(start),
              plan.checkpoint_dir.c_str());
  metrics.write(MetricsRecord("supervisor_end")
                    .add("outcome", outcome)
                    .add("launches", launched)
                    .add("seconds", seconds_since(start))
                    .add("exit_code", code));
  return code;
}

}  // namespace

CLI::App* add_launch_command(CLI::App& app, LaunchArgs& args) {
  auto* cmd = app.add_subcommand(
      "launch", "Run the training job under mpirun and relaunch it from its newest checkpoint when it fails");
  cmd->add_option("config", args.config, "YAML run config (checkpoint.dir required)")->required();
  cmd->add_option("--np", args.np, "Workers to start")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--min-np", args.min_np, "Give up when fewer workers can be placed (default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-restarts", args.max_restarts, "Relaunches after failures (default 3)");
  cmd->add_option("--hostfile", args.hostfile, "Open MPI hostfile; its slots= are re-read before every launch");
  cmd->add_option("--mpirun", args.mpirun, "mpirun program (default: mpirun on PATH)");
  cmd->add_option("--set", args.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  cmd->add_option("--metrics", args.metrics, "The job's metrics, and one record per launch, in FILE.jsonl");
  cmd->add_option("--log-dir", args.log_dir, "Every worker also logs to DIR/rank-<rank>.log");
  cmd->add_option("--progress", args.progress, "Progress while an epoch runs: auto, terminal, plain, off")
      ->check(CLI::IsMember({"auto", "terminal", "plain", "off"}));
  cmd->add_option("--stop-timeout", args.stop_timeout, "Seconds the workers get to save and stop (default 300)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--grace", args.grace_seconds,
                  "Seconds mpirun may run on after the job reported its end (default 30)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--restart-delay", args.restart_delay, "Seconds between a failure and the relaunch (default 2)")
      ->check(CLI::NonNegativeNumber);
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
