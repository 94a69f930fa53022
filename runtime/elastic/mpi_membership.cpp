#include "runtime/elastic/mpi_membership.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "runtime/core/errors.h"

namespace dptrain {

Watchdog::Watchdog(std::chrono::milliseconds limit, std::string message, int exit_code) {
  const std::string where = mpi_where();
  thread_ = std::thread([this, limit, where, message = std::move(message), exit_code] {
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_for(lock, limit, [this] { return done_; })) return;
    std::fprintf(stderr, "dptrain: %s: %s\n", where.c_str(), message.c_str());
    std::fflush(nullptr);
    std::_Exit(exit_code);
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

MPI_Comm split_off_leavers(MPI_Comm comm, bool leaving) {
  int rank = 0;
  DPTRAIN_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_Comm rest = MPI_COMM_NULL;
  DPTRAIN_MPI_CHECK(MPI_Comm_split(comm, leaving ? MPI_UNDEFINED : 0, rank, &rest));
  if (rest != MPI_COMM_NULL) DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(rest, MPI_ERRORS_RETURN));
  return rest;
}

JoinPort::JoinPort() {
  char name[MPI_MAX_PORT_NAME + 1] = {};
  DPTRAIN_MPI_CHECK(MPI_Open_port(MPI_INFO_NULL, name));
  name_ = name;
}

JoinPort::~JoinPort() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  std::vector<char> name(name_.begin(), name_.end());
  name.push_back('\0');
  MPI_Close_port(name.data());
}

namespace {

MPI_Comm merge(MPI_Comm inter, bool high) {
  MPI_Comm merged = MPI_COMM_NULL;
  DPTRAIN_MPI_CHECK(MPI_Intercomm_merge(inter, high ? 1 : 0, &merged));
  DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN));
  // The intercommunicator is not needed once merged; freeing it is local.
  MPI_Comm_free(&inter);
  return merged;
}

}  // namespace

MPI_Comm accept_and_merge(MPI_Comm comm, const std::string& port) {
  std::vector<char> name(port.begin(), port.end());
  name.push_back('\0');
  MPI_Comm inter = MPI_COMM_NULL;
  DPTRAIN_MPI_CHECK(MPI_Comm_accept(name.data(), MPI_INFO_NULL, 0, comm, &inter));
  DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN));
  return merge(inter, false);
}

MPI_Comm connect_and_merge(MPI_Comm comm, const std::string& port) {
  std::vector<char> name(port.begin(), port.end());
  name.push_back('\0');
  MPI_Comm inter = MPI_COMM_NULL;
  const int code = MPI_Comm_connect(name.data(), MPI_INFO_NULL, 0, comm, &inter);
  if (code != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw CommError(mpi_where() + ": cannot connect to the running job's port " + port + " (" + text +
                    "): start the job's mpirun and this one with the same `--ompi-server file:RUN_DIR/ompi-server.uri` "
                    "(dptrain launch does this for the job; see docs/workers-and-elastic.md)");
  }
  DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN));
  return merge(inter, true);
}

std::string broadcast_text(Communicator& comm, const std::string& text, Deadline deadline) {
  uint64_t size = text.size();
  comm.broadcast(&size, sizeof(size), 0, deadline);
  std::string result = comm.rank() == 0 ? text : std::string(size, '\0');
  if (size > 0) comm.broadcast(result.data(), size, 0, deadline);
  return result;
}

bool early_exit_keeps_job() {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr) return true;  // not Open MPI's mpirun
  const char* recovery = std::getenv("OMPI_MCA_orte_enable_recovery");
  return recovery != nullptr && (std::strcmp(recovery, "1") == 0 || std::strcmp(recovery, "true") == 0);
}

}  // namespace dptrain
