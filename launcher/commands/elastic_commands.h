// `dptrain join` (workers that join a running elastic job) and `dptrain ctl` (requests to a
// running job: a worker to leave, the current members).
#pragma once

#include <cstddef>
#include <string>

namespace CLI {
class App;
}

namespace dptrain::launcher {

class Workers;

// Options of `dptrain join`.
struct JoinArgs {
  std::string run_dir;           // --run-dir DIR: the running job's elastic.run_dir
  double wait_seconds = 3600;    // --wait: longest wait for the job's next epoch boundary
  std::string log_dir;           // --log-dir DIR: every joining worker also logs to DIR/rank-<rank>.log
};

// Options of `dptrain ctl`.
struct CtlArgs {
  std::string run_dir;  // --run-dir DIR
  long rank = -1;       // ctl leave --rank R
};

// The subcommands `add_elastic_commands` registered, to tell which one was parsed.
struct ElasticCommands {
  CLI::App* join = nullptr;
  CLI::App* ctl_leave = nullptr;
  CLI::App* ctl_status = nullptr;
};

ElasticCommands add_elastic_commands(CLI::App& app, JoinArgs& join, CtlArgs& ctl);

int run_join(const JoinArgs& args, Workers& workers);
int run_ctl_leave(const CtlArgs& args);
int run_ctl_status(const CtlArgs& args);

}  // namespace dptrain::launcher
