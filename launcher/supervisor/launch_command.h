// `dptrain launch`: a supervisor that runs a training job under mpirun and, when the job fails,
// relaunches it from its newest checkpoint with the workers that can still be placed. Also the
// status file through which `dptrain train --exit-status FILE` tells it how the job ended.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dptrain::launcher {

// Options of `dptrain launch`.
struct LaunchArgs {
  std::string config;
  std::vector<std::string> overrides;    // --set key=value, passed on to every launch
  size_t np = 0;                         // --np: workers wanted
  size_t min_np = 1;                     // --min-np: fewer placeable workers than this: give up
  size_t max_restarts = 3;               // --max-restarts: relaunches after failures
  std::string hostfile;                  // --hostfile: passed to mpirun, re-read before every launch
  std::string mpirun = "mpirun";         // --mpirun: the program (PATH is searched)
  std::vector<std::string> mpirun_args;  // after `--`: given to mpirun before the program
  std::string metrics;                   // --metrics FILE.jsonl: the job's and the supervisor's records
  std::string log_dir;                   // --log-dir DIR: passed on (every worker logs to DIR/rank-<r>.log)
  std::string progress = "auto";         // --progress: passed on
  double stop_timeout = 300;             // seconds the workers get to save and stop after a stop request
  double grace_seconds = 30;             // seconds mpirun may run on after the job reported its end
  double restart_delay = 2;              // seconds between a failed launch and the next
};

// Registers `launch` on `app`, parsing into `args`; returns the subcommand.
CLI::App* add_launch_command(CLI::App& app, LaunchArgs& args);

// Supervises the job until it completes, stops, or can no longer be relaunched. Catches its own
// errors (one message on stderr). Exit code: 0 completed or stopped, 1 gave up or a user error.
int run_launch(const LaunchArgs& args);

// Writes `line` into `path` atomically (a temporary file in the same folder, then rename), so that
// the supervisor never reads half a status. Does nothing for an empty path; a failure is reported
// on stderr, never thrown (it is called while handling other errors).
void write_run_status(const std::string& path, const std::string& line);

// The status line of a run that stopped early: "stopped SIGTERM" (the signal that asked for it, a
// checkpoint saved), or "stopped: REASON" (say, too few workers remained).
std::string stop_status(int signal, const std::string& reason);

// `dptrain train --exit-status FILE` after `error` ended the run: rank 0 records
// "refused: MESSAGE" for a mistake in the config, the command line or the checkpoints, which a
// relaunch would only repeat, and "failed: MESSAGE" for anything else. Other ranks write nothing.
void record_train_error(const std::string& path, size_t rank, const std::exception& error, const std::string& message);

}  // namespace dptrain::launcher
