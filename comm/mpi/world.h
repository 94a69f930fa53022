// World discovery: where each worker runs (host, local rank) and a description of the whole job.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "runtime/core/host.h"

namespace dptrain {

// This worker's place on its node.
struct LocalRank {
  size_t rank = 0;            // among the workers on this node
  size_t size = 1;            // workers on this node
  std::string source;         // where it came from: "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_Comm_split_type"
};

// The local rank from the launcher's environment (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK and
// _LOCAL_SIZE, Slurm's SLURM_LOCALID and SLURM_TASKS_PER_NODE); otherwise from the ranks of
// `comm` that share memory with this one (MPI_Comm_split_type).
LocalRank discover_local_rank(MPI_Comm comm);

// What one worker reports about itself at start-up (fixed size, so it can be all-gathered).
struct WorkerInfo {
  uint32_t rank = 0;
  uint32_t local_rank = 0;
  uint32_t local_size = 1;
  uint32_t threads = 0;
  int32_t pid = 0;
  char host[64] = {};
};

// Every worker's WorkerInfo, in rank order (a collective: all workers call it).
std::vector<WorkerInfo> gather_workers(Communicator& comm, const WorkerInfo& self, Deadline deadline);

// "world: 3 workers on 1 host (mpi)" and one line per worker.
std::string describe_world(const std::vector<WorkerInfo>& workers, const char* backend);

}  // namespace dptrain
