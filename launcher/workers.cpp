#include "launcher/workers.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "comm/mpi/mpi_communicator.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"

namespace dptrain::launcher {

Workers::Workers(int* argc, char*** argv) {
  if (launched_by_mpi()) {
    mpi_ = std::make_unique<MpiRuntime>(argc, argv);
    comm_ = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
    local_ = discover_local_rank(MPI_COMM_WORLD);
  } else {
    comm_ = std::make_unique<SingleProcessCommunicator>();
    local_.source = "single worker";
  }
}

Workers::~Workers() {
  comm_.reset();
  if (rank_log_) std::fclose(rank_log_);
}

std::FILE* Workers::open_rank_log(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / ("rank-" + std::to_string(rank()) + ".log")).string();
  try {
    make_private_directories(dir);
    const int fd = open_private_append(path);  // owner-only, never through a symlink
    rank_log_ = ::fdopen(fd, "a");
    if (!rank_log_) ::close(fd);
  } catch (const Error& e) {
    throw UsageError("--log-dir " + dir + ": " + e.what());
  }
  if (!rank_log_) throw UsageError("--log-dir: cannot open " + path + " for writing: " + std::strerror(errno));
  return rank_log_;
}

std::string Workers::describe(size_t threads, Deadline deadline) {
  WorkerInfo self;
  self.rank = static_cast<uint32_t>(rank());
  self.local_rank = static_cast<uint32_t>(local_.rank);
  self.local_size = static_cast<uint32_t>(local_.size);
  self.threads = static_cast<uint32_t>(threads);
  self.pid = static_cast<int32_t>(getpid());
  std::strncpy(self.host, host_name().c_str(), sizeof(self.host) - 1);
  infos_ = gather_workers(*comm_, self, deadline);
  return describe_world(infos_, comm_->backend());
}

std::string Workers::monitor_peers(double silence_seconds, Deadline deadline) {
  auto* mpi = dynamic_cast<MpiCommunicator*>(comm_.get());
  if (!mpi || silence_seconds <= 0 || size() < 2) return "";
  if (mpi->monitor_peers(silence_seconds, infos_, deadline)) return "";
  return "heartbeats off: this MPI library does not offer MPI_THREAD_MULTIPLE, so a lost worker is noticed only "
         "after comm.timeout_seconds";
}

void Workers::exit_peer_lost(const char* message) {
  const std::string prefix = "dptrain: rank " + std::to_string(rank()) + ": error: ";
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), message);
  if (rank_log_) std::fprintf(rank_log_, "%s%s\n", prefix.c_str(), message);
  std::fflush(nullptr);
  std::_Exit(kPeerLostExitCode);
}

void Workers::fail(const char* message, int code) {
  const std::string prefix = size() > 1 ? "dptrain: rank " + std::to_string(rank()) + ": error: " : "dptrain: error: ";
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), message);
  std::fflush(stderr);
  if (rank_log_) {
    std::fprintf(rank_log_, "%s%s\n", prefix.c_str(), message);
    std::fflush(rank_log_);
  }
  if (mpi_ && size() > 1) MpiRuntime::abort(code);
}

}  // namespace dptrain::launcher
