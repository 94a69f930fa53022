// `dptrain launch`: a supervisor that runs a training job under mpirun and, when the job fails,
// relaunches it from its newest checkpoint with the workers that can still be placed. The job tells
// it how it ended through a status file (launcher/supervisor/run_status.h).
#pragma once

#include <cstddef>
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

}  // namespace dptrain::launcher
