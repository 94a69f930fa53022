#include "comm/mpi/world.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "comm/mpi/mpi_communicator.h"

namespace dptrain {

namespace {

// A non-negative integer from the environment, or -1.
long env_index(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return -1;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  return (end && *end == '\0' && v >= 0) ? v : -1;
}

}  // namespace

LocalRank discover_local_rank(MPI_Comm comm) {
  LocalRank local;
  // The node-local communicator gives the size in every case; the environment, when present,
  // gives the rank the launcher intended (and the one GPU binding scripts use).
  MPI_Comm node = MPI_COMM_NULL;
  DPTRAIN_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int rank = 0, size = 1;
  DPTRAIN_MPI_CHECK(MPI_Comm_rank(node, &rank));
  DPTRAIN_MPI_CHECK(MPI_Comm_size(node, &size));
  DPTRAIN_MPI_CHECK(MPI_Comm_free(&node));
  local.rank = static_cast<size_t>(rank);
  local.size = static_cast<size_t>(size);
  local.source = "MPI_Comm_split_type";
  if (long r = env_index("OMPI_COMM_WORLD_LOCAL_RANK"); r >= 0) {
    local.rank = static_cast<size_t>(r);
    local.source = "OMPI_COMM_WORLD_LOCAL_RANK";
    if (long s = env_index("OMPI_COMM_WORLD_LOCAL_SIZE"); s > 0) local.size = static_cast<size_t>(s);
  } else if (long r = env_index("SLURM_LOCALID"); r >= 0) {
    local.rank = static_cast<size_t>(r);
    local.source = "SLURM_LOCALID";
  }
  return local;
}

std::vector<WorkerInfo> gather_workers(Communicator& comm, const WorkerInfo& self, Deadline deadline) {
  std::vector<WorkerInfo> all(comm.size());
  comm.all_gather(&self, sizeof(WorkerInfo), all.data(), deadline);
  for (auto& w : all) w.host[sizeof(w.host) - 1] = '\0';
  return all;
}

std::string describe_world(const std::vector<WorkerInfo>& workers, const char* backend) {
  std::set<std::string> hosts;
  for (const auto& w : workers) hosts.insert(w.host);
  std::ostringstream out;
  out << "world: " << workers.size() << (workers.size() == 1 ? " worker" : " workers") << " on " << hosts.size()
      << (hosts.size() == 1 ? " host" : " hosts") << " (" << backend << ")";
  for (const auto& w : workers) {
    out << "\n  rank " << w.rank << "  host " << w.host << "  local rank " << w.local_rank << "/" << w.local_size
        << "  threads " << w.threads << "  pid " << w.pid;
  }
  return out.str();
}

}  // namespace dptrain
