// Workers: the job this process belongs to, as the launcher found it — an MPI world when started
// by mpirun or srun, otherwise a single worker — and the per-rank log file.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi/world.h"

namespace dptrain {
class MpiRuntime;
}

namespace dptrain::launcher {

// Exit status of a worker that stopped because other workers were lost.
constexpr int kPeerLostExitCode = 1;

// Set up once in main(); every subcommand that trains asks it for the communicator.
class Workers {
 public:
  Workers(int* argc, char*** argv);
  ~Workers();

  Communicator& comm() { return *comm_; }
  const LocalRank& local() const { return local_; }
  size_t rank() const { return comm_->rank(); }
  size_t size() const { return comm_->size(); }

  // Opens DIR/rank-<rank>.log for appending (creating DIR); errors name the path.
  std::FILE* open_rank_log(const std::string& dir);
  std::FILE* rank_log() const { return rank_log_; }

  // Every worker's host, local rank and threads, gathered (collective) and described.
  std::string describe(size_t threads, Deadline deadline);
  // What describe() gathered, in rank order (empty before).
  const std::vector<WorkerInfo>& infos() const { return infos_; }

  // Starts heartbeats among the workers (collective; after describe(), whose WorkerInfo names a lost
  // worker) when `silence_seconds` is above 0 and there are several workers. Returns a note for the
  // log when heartbeats were wanted but this MPI cannot run them; otherwise "".
  std::string monitor_peers(double silence_seconds, Deadline deadline);

  // Reports that peers were lost (PeerLostError's message) like fail(), then ends this process at
  // once: no MPI_Finalize (it would wait for the dead peer), no MPI_Abort (it would kill the other
  // survivors before they report), no destructors (they may wait on the dead peer too).
  [[noreturn]] void exit_peer_lost(const char* message);

  // Reports a fatal error: on stderr (with the rank when there are several) and in the rank log.
  // With several workers it then ends the whole job, so that no peer waits for this one.
  void fail(const char* message, int code);

 private:
  std::unique_ptr<MpiRuntime> mpi_;
  std::unique_ptr<Communicator> comm_;
  LocalRank local_;
  std::vector<WorkerInfo> infos_;
  std::FILE* rank_log_ = nullptr;
};

}  // namespace dptrain::launcher
