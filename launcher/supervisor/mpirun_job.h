// One launch of a training job under `mpirun --enable-recovery`, as `dptrain launch` runs and
// watches it: its command line, the stop requests it forwards, the deadlines after which the
// supervisor ends mpirun itself; and ompi-server, through which elastic joiners find the job.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/supervisor/child_process.h"
#include "launcher/supervisor/launch_command.h"
#include "launcher/supervisor/run_status.h"

namespace dptrain::launcher {

// Everything about a launch that stays the same from one launch to the next.
struct JobPlan {
  std::string mpirun;       // resolved path
  std::string executable;   // this dptrain binary
  std::string status_path;  // checkpoint.dir/launch-status: how the job ended (run_status.h)
  std::string checkpoint_dir;
  std::string ompi_server;  // "file:RUN_DIR/ompi-server.uri", or "" without elastic
};

// How one launch ended.
struct LaunchEnd {
  std::optional<RunStatus> status;  // what the job's rank 0 recorded; none when no rank 0 could
  int mpirun_exit = 0;              // mpirun's exit code (128 + N: signal N)
  double seconds = 0;
};

// Stop requests that reached the supervisor (SIGTERM, SIGINT, SIGUSR2): counted by a signal handler.
class StopRequests {
 public:
  // Installs the handlers (once per process).
  static void install();
  // Requests so far (copies of one request may arrive together), and the first one's signal.
  static int count();
  static int first_signal();
};

// `mpirun --enable-recovery -np WORKERS [options] dptrain train CONFIG --resume auto --exit-status ...`.
std::vector<std::string> mpirun_command(const LaunchArgs& args, const JobPlan& plan, size_t workers);

// Runs mpirun once with `workers` workers and watches it: forwards a stop request as SIGUSR2
// (checkpoint and stop), ends it on a second request, or when it outlives --stop-timeout after a
// request, or --grace after the job recorded its status. Never waits without a deadline.
LaunchEnd run_job_once(const LaunchArgs& args, const JobPlan& plan, size_t workers);

// Starts ompi-server writing its URI to `uri_file`, and waits (at most 10 s) for the file.
std::unique_ptr<ChildProcess> start_name_server(const JobPlan& plan, const std::string& uri_file);

}  // namespace dptrain::launcher
