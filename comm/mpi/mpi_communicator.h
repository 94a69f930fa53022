// MpiCommunicator: the Communicator over MPI for host memory, and the MPI library's lifetime.
#pragma once

#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi/world.h"

namespace dptrain {

class PeerMonitor;

// Throws CommError naming the call, file:line, this host and rank, and MPI's own message.
void mpi_check(int code, const char* call, const char* file, int line);
#define DPTRAIN_MPI_CHECK(call) ::dptrain::mpi_check((call), #call, __FILE__, __LINE__)

// "rank R on HOST" for messages; before MPI is initialised, "HOST".
std::string mpi_where();

// The message of a collective `what` on a `world`-rank communicator that did not complete within
// `deadline`: the collective, the communicator, and (without a `monitor`: heartbeats off) how to have
// the missing rank named.
std::string collective_timeout(const std::string& what, Deadline deadline, size_t world,
                               const PeerMonitor* monitor);

// Polls `request` until it completes or `deadline` passes; then throws CommError naming this
// rank, `what` and the peers (`world` ranks in all) one of which did not take part. With a
// `monitor`, throws PeerLostError as soon as it knows of a worker that stopped answering.
void wait_request(MPI_Request* request, Deadline deadline, size_t world, const std::string& what,
                  const PeerMonitor* monitor = nullptr);

// Whether this process was started by a launcher that expects it to join an MPI job
// (mpirun/mpiexec, srun with PMI or PMIx). Without one, dptrain is a single worker and never
// initialises MPI.
bool launched_by_mpi();

// Initialises MPI (thread level MULTIPLE when the library offers it) for the life of this
// object, and sets MPI_ERRORS_RETURN on MPI_COMM_WORLD so every failure reaches DPTRAIN_MPI_CHECK.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // True when another thread may call MPI while one is inside it (MPI_THREAD_MULTIPLE).
  bool multithreaded() const { return provided_ == MPI_THREAD_MULTIPLE; }
  // Ends the whole job at once: every rank of MPI_COMM_WORLD exits with `code`.
  static void abort(int code);

 private:
  int provided_ = MPI_THREAD_SINGLE;
};

// Collectives over an MPI communicator (its own duplicate, so dptrain's traffic never mixes with
// anyone else's). Every wait is bounded: a peer that dies or hangs ends in a CommError naming
// this rank, not in a hang.
//
// Asynchronous all-reduces run on a collective thread of the communicator's own, one after
// another in the order they were started, each as a blocking MPI_Allreduce on a second
// duplicate: they move on while the caller computes, at the speed of MPI's tuned blocking
// algorithms. Before each, the thread waits for every peer in a barrier that it polls with pauses,
// so that it does not spin on a core the caller's threads compute on while a peer is still behind.
// Without MPI_THREAD_MULTIPLE they fall back to MPI_Iallreduce, which advances only when the
// caller tests or waits.
//
// With monitor_peers(), heartbeats (PeerMonitor) tell a dead peer from a slow one: every wait then
// ends in a PeerLostError naming the lost worker within seconds of its last heartbeat.
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  using Communicator::all_reduce_sum;
  const char* backend() const override { return "mpi"; }
  size_t rank() const override { return rank_; }
  size_t size() const override { return size_; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float* data, size_t count) override;
  std::unique_ptr<CommRequest> all_reduce_int64_async(int64_t* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count, Deadline deadline) override;
  void broadcast(void* data, size_t bytes, size_t root, Deadline deadline) override;
  void barrier(Deadline deadline) override;
  void all_gather(const void* send, size_t bytes_each, void* recv, Deadline deadline) override;
  std::vector<std::string> gather_bytes(const std::string& send, size_t root, Deadline deadline) override;

  // Starts heartbeats among the ranks (collective; see PeerMonitor): from then on every wait throws
  // PeerLostError once a worker has been silent for `silence_seconds`. `workers`: every rank's
  // WorkerInfo (gather_workers), to name a lost one by host and pid; `deadline` bounds the start.
  // Returns false and monitors nothing when `silence_seconds` is 0, with one worker, or without
  // MPI_THREAD_MULTIPLE (the heartbeats need a thread of their own); the waits' deadlines then
  // remain the only bound.
  bool monitor_peers(double silence_seconds, std::vector<WorkerInfo> workers,
                     Deadline deadline = std::chrono::seconds(300));
  // Ends the heartbeats on purpose, e.g. before a planned change of membership, so that a worker
  // leaving is not reported lost. Bounded (PeerMonitor::stop_bound()) and idempotent; the
  // destructor calls it.
  void stop_monitoring();
  // The heartbeat monitor, or null when there is none.
  const PeerMonitor* monitor() const { return monitor_.get(); }

  MPI_Comm comm() const { return comm_; }
  // True when asynchronous all-reduces run on the collective thread.
  bool has_collective_thread() const { return collective_thread_.joinable(); }

  struct Task;  // one queued all-reduce (defined in the .cpp)
  // Starts the in-place sum of `count` values of `type` (`bytes` each) at `data`: on the collective
  // thread where there is one, else as MPI_Iallreduce. `what` names it in errors.
  std::unique_ptr<CommRequest> start_sum(void* data, size_t count, MPI_Datatype type, size_t bytes,
                                         const std::string& what);
  // What the collective thread shares with the communicator. Shared, so that a thread stuck in
  // an all-reduce with a dead peer can be left behind without touching freed memory.
  struct Queue {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::shared_ptr<Task>> tasks;
    bool in_mpi = false;  // the thread is inside an all-reduce (or the barrier before it)
    bool stop = false;
    MPI_Comm comm = MPI_COMM_NULL;  // the thread's own duplicate
  };

 private:
  static void collective_loop(std::shared_ptr<Queue> queue);
  // wait_request on comm_; a wait that ends in an error marks the communicator abandoned.
  void wait(MPI_Request* request, Deadline deadline, const std::string& what);

  MPI_Comm comm_ = MPI_COMM_NULL;  // the caller's thread's
  size_t rank_ = 0;
  size_t size_ = 1;
  std::shared_ptr<Queue> queue_;
  std::thread collective_thread_;
  std::shared_ptr<PeerMonitor> monitor_;  // shared with the requests started while it ran
  // Set when a request on comm_ was given up before it completed (a missed deadline, a lost peer).
  // Such a request may still be advanced by MPI later, so comm_ is then never freed: Open MPI's
  // non-blocking collectives would touch the freed communicator. Shared with the requests.
  std::shared_ptr<std::atomic<bool>> abandoned_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace dptrain
