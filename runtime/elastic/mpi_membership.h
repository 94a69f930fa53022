// Elastic membership over MPI: the collective steps that let workers leave a running job or join it
// between epochs (the policy and the run-directory protocol are in runtime/elastic/controller.h).
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "comm/communicator.h"

namespace dptrain {

// Ends this process with a message if a guarded blocking MPI call (accept, connect, merge, split —
// calls with no deadline of their own) has not returned in time: the last resort against a peer
// that died inside one. Disarmed on destruction.
class Watchdog {
 public:
  // After `limit`, prints "dptrain: <where>: <message>" on stderr and ends the process with `exit_code`.
  Watchdog(std::chrono::milliseconds limit, std::string message, int exit_code = 1);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

// The workers of `comm` that do not leave, as a new communicator (collective over `comm`; the
// leavers get MPI_COMM_NULL). Ranks keep their order.
MPI_Comm split_off_leavers(MPI_Comm comm, bool leaving);

// A port other MPI jobs connect to (MPI_Open_port on rank 0 of a job); closed on destruction.
class JoinPort {
 public:
  JoinPort();
  ~JoinPort();
  JoinPort(const JoinPort&) = delete;
  JoinPort& operator=(const JoinPort&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// Accepts one connecting job on `port` (significant on rank 0 only) and merges it in: the new
// communicator holds `comm`'s workers first, in order, then the joiners. Collective over `comm`.
MPI_Comm accept_and_merge(MPI_Comm comm, const std::string& port);

// Connects this job (all of `comm`, collectively) to the job listening on `port` and merges into
// it, after that job's workers. Throws CommError when the connection fails, saying how to start
// both jobs so that they can find each other (mpirun --ompi-server).
MPI_Comm connect_and_merge(MPI_Comm comm, const std::string& port);

// Copies `text` from rank 0 of `comm` to every worker (collective over `comm`).
std::string broadcast_text(Communicator& comm, const std::string& text, Deadline deadline);

// True when this worker was started by Open MPI's mpirun with --enable-recovery (a worker may then
// leave early without ending the job), or by a launcher that does not end the job on an early exit.
bool early_exit_keeps_job();

}  // namespace dptrain
