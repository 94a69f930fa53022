// `dptrain ctl`: requests to a running job through its run directory.
#include <cstdio>

#include "launcher/commands/elastic_commands.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/elastic/run_dir.h"

namespace dptrain::launcher {

int run_ctl_leave(const CtlArgs& args) {
  check_private_folder(args.run_dir, "--run-dir");
  const ElasticDir dir(args.run_dir);
  const std::vector<WorkerInfo> members = dir.read_members();
  if (members.empty()) {
    throw UsageError(args.run_dir + " has no running job's member list (" + dir.path("members") +
                     "): give the job's elastic.run_dir (default: its checkpoint.dir)");
  }
  const size_t rank = static_cast<size_t>(args.rank);
  if (rank >= members.size()) {
    throw UsageError("--rank " + std::to_string(rank) + ": the job has " + std::to_string(members.size()) +
                     " workers (ranks 0-" + std::to_string(members.size() - 1) + ")");
  }
  if (rank == 0) {
    throw UsageError("--rank 0: rank 0 writes the checkpoints and the metrics and cannot leave; stop the whole job "
                     "with SIGTERM (or SIGUSR2 to mpirun) instead");
  }
  dir.request_leave(rank);
  std::printf("asked %s to leave the job in %s at its next epoch boundary\n",
              describe_worker(rank, members[rank]).c_str(), args.run_dir.c_str());
  return 0;
}

int run_ctl_status(const CtlArgs& args) {
  const ElasticDir dir(args.run_dir);
  const std::vector<WorkerInfo> members = dir.read_members();
  if (members.empty()) throw UsageError(args.run_dir + ": no member list (" + dir.path("members") + ")");
  std::printf("%zu worker(s)%s\n", members.size(), dir.port() ? ", accepting joiners" : "");
  for (size_t r = 0; r < members.size(); ++r) std::printf("  %s\n", describe_worker(r, members[r]).c_str());
  return 0;
}

}  // namespace dptrain::launcher
