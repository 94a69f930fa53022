// PeerMonitor: heartbeats among the workers of one MPI communicator, so that a worker that was killed
// or lost its node is named by every survivor within seconds, instead of leaving their collectives
// waiting until comm.timeout_seconds.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi/world.h"

namespace dptrain {

// A worker found lost: its rank, where it ran, and why it counts as lost.
struct LostPeer {
  size_t rank = 0;
  WorkerInfo info;     // host and pid (zero when the monitor was given no WorkerInfo)
  std::string reason;  // "no heartbeat for 10.2 s", "rank 0 heard no heartbeat from it for 10 s"
};

// Heartbeats through rank 0 (a star): every other rank beats to rank 0, and rank 0 beats to each of
// them with the list of ranks it has found lost. Rank 0 notices any silent worker and relays it at
// once; the others notice a silent rank 0 themselves. So a worker sends and receives one small message
// per period (rank 0: one per worker), however large the job. The beats travel on a duplicate of the
// communicator and come from a thread of the monitor's own, never from the training loop, so a worker
// busy computing or writing a checkpoint keeps answering. Needs MPI_THREAD_MULTIPLE.
class PeerMonitor {
 public:
  // Starts monitoring the ranks of `comm` (collective over `comm`: a duplicate is made, waiting at most
  // `deadline`). A worker silent for `silence_seconds` counts as lost. `workers`: every rank's
  // WorkerInfo, in rank order, to name lost workers by host and pid (may be empty).
  PeerMonitor(MPI_Comm comm, double silence_seconds, std::vector<WorkerInfo> workers, Deadline deadline);
  // stop(stop_bound())
  ~PeerMonitor();
  PeerMonitor(const PeerMonitor&) = delete;
  PeerMonitor& operator=(const PeerMonitor&) = delete;

  // Ends monitoring on purpose: tells the peers goodbye (they stop expecting heartbeats from this
  // worker, so a planned departure is never reported as a loss) and waits up to `bound` for their
  // goodbyes, so that no heartbeat is left in flight. Idempotent; never waits longer than `bound`.
  void stop(Deadline bound);
  // The bound the destructor gives stop(): the silence plus one second.
  Deadline stop_bound() const;

  // True once any worker is known to be lost (cheap: meant for polling loops).
  bool any_lost() const { return any_lost_.load(std::memory_order_acquire); }
  std::vector<LostPeer> lost() const;
  // Throws PeerLostError naming every lost worker and `what` this worker was waiting in, when any is
  // lost; CommError when the monitor itself failed.
  void check(const std::string& what) const;

  double silence_seconds() const { return silence_; }
  double period_seconds() const { return period_; }  // between two heartbeats to the same peer

  struct Link;  // one peer this rank exchanges heartbeats with (defined in the .cpp)

 private:
  void run();
  void beat_all(uint64_t kind);
  bool send_to(Link& link, uint64_t kind);
  void receive();
  void watch_silence();
  void mark_lost(size_t rank, const std::string& reason);
  bool say_goodbye(std::chrono::steady_clock::time_point until);
  Link* link_of(size_t rank);

  MPI_Comm comm_ = MPI_COMM_NULL;  // the monitor's own duplicate
  size_t rank_ = 0;
  size_t size_ = 1;
  double silence_;
  double period_;
  std::vector<WorkerInfo> workers_;

  // State of the monitor thread alone.
  std::vector<Link> links_;            // rank 0: every other rank; the others: rank 0
  std::vector<uint64_t> lost_bits_;    // ranks known lost, one bit each
  std::vector<uint64_t> recv_buffer_;  // (1 + lost_bits_.size()): kind, then the lost bits
  MPI_Request recv_ = MPI_REQUEST_NULL;
  bool relay_now_ = false;  // rank 0 found a loss: beat to everyone at once
  bool quiet_ = false;      // at the end: nothing left in flight, the duplicate can be freed

  std::thread thread_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;   // under wake_mutex_
  Deadline stop_bound_{0};  // under wake_mutex_

  mutable std::mutex lost_mutex_;
  std::vector<LostPeer> lost_;         // under lost_mutex_
  std::string failure_;                // under lost_mutex_: an MPI error of the monitor itself
  std::exception_ptr thread_error_;    // under lost_mutex_: anything else that stopped the heartbeat thread
  std::atomic<bool> any_lost_{false};  // lost_ or failure_ is not empty
};

}  // namespace dptrain
