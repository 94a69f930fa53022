#include "launcher/supervisor/mpirun_job.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "runtime/core/errors.h"
#include "runtime/core/signals.h"
#include "runtime/report/metrics.h"

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

Clock::time_point after(Clock::time_point start, double seconds) {
  return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// The state of one watched launch: which stop request was forwarded, when the job's status appeared.
class JobWatch {
 public:
  JobWatch(const LaunchArgs& args, const JobPlan& plan) : args_(args), plan_(plan) {}

  // One poll: acts on new stop requests and on the status file; true when the supervisor should end mpirun.
  bool should_end(ChildProcess& mpirun) {
    const int requests = stop_requests.load();
    if (requests >= 1 && !forwarded_) forward(mpirun, requests);
    if (forwarded_ && requests > requests_seen_) {
      // Copies of one request arrive together (timeout(1), for one, signals its child and then its
      // whole process group); a request that comes later is a second one.
      if (seconds_since(forwarded_at_) < 0.5) {
        requests_seen_ = requests;
      } else {
        std::printf("dptrain launch: asked twice: ending the job now\n");
        return true;
      }
    }
    if (forwarded_ && Clock::now() > after(forwarded_at_, args_.stop_timeout)) {
      std::printf("dptrain launch: the workers did not stop within %g s (--stop-timeout): ending the job\n",
                  args_.stop_timeout);
      return true;
    }
    if (!status_seen_ && fs::exists(plan_.status_path)) {
      status_seen_ = true;
      status_seen_at_ = Clock::now();
    }
    if (status_seen_ && seconds_since(status_seen_at_) > args_.grace_seconds) {
      const std::optional<RunStatus> status = read_run_status(plan_.status_path);
      std::printf(
          "dptrain launch: mpirun still runs %g s after the job reported \"%s\" (a worker stuck in "
          "MPI_Finalize?): ending it\n",
          args_.grace_seconds, status ? to_string(*status).c_str() : "?");
      return true;
    }
    return false;
  }

 private:
  void forward(ChildProcess& mpirun, int requests) {
    forwarded_ = true;
    requests_seen_ = requests;
    forwarded_at_ = Clock::now();
    std::printf(
        "dptrain launch: %s: asking the workers to save a checkpoint and stop (SIGUSR2 to mpirun); "
        "signal again to end them at once\n",
        stop_signal_name(first_stop_signal.load()));
    std::fflush(stdout);
    mpirun.send(SIGUSR2);
  }

  const LaunchArgs& args_;
  const JobPlan& plan_;
  bool forwarded_ = false;
  int requests_seen_ = 0;
  Clock::time_point forwarded_at_;
  bool status_seen_ = false;  // the job has written its status, at status_seen_at_
  Clock::time_point status_seen_at_;
};

}  // namespace

void StopRequests::install() {
  static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");
  struct sigaction action {};
  action.sa_handler = on_supervisor_signal;
  sigemptyset(&action.sa_mask);
  for (int s : kStopSignals) sigaction(s, &action, nullptr);
}

int StopRequests::count() { return stop_requests.load(); }

int StopRequests::first_signal() { return first_stop_signal.load(); }

std::vector<std::string> mpirun_command(const LaunchArgs& args, const JobPlan& plan, size_t workers) {
  std::vector<std::string> argv = {plan.mpirun, "--enable-recovery", "-np", std::to_string(workers)};
  if (!args.hostfile.empty()) argv.insert(argv.end(), {"--hostfile", args.hostfile});
  if (!plan.ompi_server.empty()) {
    argv.insert(argv.end(), {"--ompi-server", plan.ompi_server});
    // Joiners may share cores with the job: waiting workers then yield instead of spinning, unless
    // the user chose otherwise.
    const bool chosen =
        std::getenv("OMPI_MCA_mpi_yield_when_idle") != nullptr ||
        std::find(args.mpirun_args.begin(), args.mpirun_args.end(), "mpi_yield_when_idle") != args.mpirun_args.end();
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

LaunchEnd run_job_once(const LaunchArgs& args, const JobPlan& plan, size_t workers) {
  const Clock::time_point start = Clock::now();
  ChildProcess mpirun(mpirun_command(args, plan, workers));
  JobWatch watch(args, plan);
  while (!mpirun.exited()) {
    if (watch.should_end(mpirun)) {
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

std::unique_ptr<ChildProcess> start_name_server(const JobPlan& plan, const std::string& uri_file) {
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

}  // namespace dptrain::launcher
