#include "comm/mpi/mpi_communicator.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "comm/mpi/peer_monitor.h"
#include "comm/mpi/world.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

// The largest element count one MPI call takes (MPI counts are int).
constexpr size_t kMaxCount = size_t{1} << 30;

// A started MPI_Iallreduce (or a chain of them for buffers beyond one call's count).
class MpiRequest final : public CommRequest {
 public:
  MpiRequest(std::vector<MPI_Request> requests, size_t world, std::string what,
             std::shared_ptr<const PeerMonitor> monitor, std::shared_ptr<std::atomic<bool>> abandoned)
      : requests_(std::move(requests)),
        world_(world),
        what_(std::move(what)),
        monitor_(std::move(monitor)),
        abandoned_(std::move(abandoned)) {
    timing_.start = Clock::now();
  }
  ~MpiRequest() override {
    // A request abandoned after an error is left to MPI_Finalize/MPI_Abort; never freed mid-flight,
    // and its communicator is kept.
    if (!done_) abandoned_->store(true);
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    DPTRAIN_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE));
    done_ = flag != 0;
    if (done_) timing_.end = Clock::now();
    return done_;
  }
  void wait(Deadline deadline) override {
    if (done_) return;
    const auto limit = Clock::now() + deadline;
    try {
      for (auto& r : requests_) {
        const auto left = std::chrono::duration_cast<Deadline>(limit - Clock::now());
        wait_request(&r, std::max(left, Deadline(0)), world_, what_, monitor_.get());
      }
    } catch (...) {
      abandoned_->store(true);
      throw;
    }
    done_ = true;
    timing_.end = Clock::now();
  }
  CommTiming timing() const override { return timing_; }

 private:
  std::vector<MPI_Request> requests_;
  size_t world_;
  std::string what_;
  std::shared_ptr<const PeerMonitor> monitor_;
  std::shared_ptr<std::atomic<bool>> abandoned_;
  bool done_ = false;
  CommTiming timing_;  // start: when it was posted; end: when a test or wait saw it complete
};

// A request served by the collective thread.
class ThreadedRequest final : public CommRequest {
 public:
  ThreadedRequest(std::shared_ptr<MpiCommunicator::Task> task, std::string what, size_t world,
                  std::shared_ptr<const PeerMonitor> monitor)
      : task_(std::move(task)), what_(std::move(what)), world_(world), monitor_(std::move(monitor)) {}
  bool test() override;
  void wait(Deadline deadline) override;
  CommTiming timing() const override;

 private:
  std::shared_ptr<MpiCommunicator::Task> task_;
  std::string what_;
  size_t world_;  // ranks of the communicator
  std::shared_ptr<const PeerMonitor> monitor_;
};

int world_rank_or(int fallback) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return fallback;
  int rank = fallback;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

}  // namespace

struct MpiCommunicator::Task {
  enum State { Pending, Done, Failed };
  void* data = nullptr;
  size_t count = 0;
  MPI_Datatype type = MPI_FLOAT;
  size_t bytes = sizeof(float);  // of one value
  std::mutex mutex;
  std::condition_variable done;
  std::atomic<int> state{Pending};
  std::string error;             // set before state becomes Failed
  std::exception_ptr exception;  // what the collective thread threw, other than a CommError; rethrown by the waiter
  CommTiming timing;             // set by the collective thread before state leaves Pending

  void finish(State s, std::string message = {}, std::exception_ptr thrown = nullptr) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::move(message);
      exception = std::move(thrown);
      state.store(s, std::memory_order_release);
    }
    done.notify_all();
  }
};

namespace {

bool ThreadedRequest::test() {
  const int state = task_->state.load(std::memory_order_acquire);
  if (state == MpiCommunicator::Task::Failed) {
    if (task_->exception) std::rethrow_exception(task_->exception);
    throw CommError(task_->error);
  }
  return state == MpiCommunicator::Task::Done;
}

void ThreadedRequest::wait(Deadline deadline) {
  // The peers are usually a moment behind: spin briefly before sleeping on the condition.
  const auto spin_until = Clock::now() + std::chrono::microseconds(50);
  while (Clock::now() < spin_until) {
    if (test()) return;
  }
  const auto limit = Clock::now() + deadline;
  // With heartbeats, wake up now and then to ask whether a peer was lost.
  const auto slice = monitor_ ? Clock::duration(std::chrono::milliseconds(50)) : Clock::duration(deadline);
  bool finished = false;
  std::unique_lock<std::mutex> lock(task_->mutex);
  while (!finished) {
    if (monitor_ && monitor_->any_lost()) {
      lock.unlock();
      monitor_->check(what_);
      lock.lock();
    }
    const auto now = Clock::now();
    if (now >= limit) break;
    finished = task_->done.wait_for(lock, std::min(slice, limit - now), [this] {
      return task_->state.load(std::memory_order_acquire) != MpiCommunicator::Task::Pending;
    });
  }
  lock.unlock();
  if (!finished) throw CommError(collective_timeout(what_, deadline, world_, monitor_.get()));
  test();
}

CommTiming ThreadedRequest::timing() const {
  if (task_->state.load(std::memory_order_acquire) == MpiCommunicator::Task::Pending) return {};
  return task_->timing;
}

}  // namespace

std::string collective_timeout(const std::string& what, Deadline deadline, size_t world, const PeerMonitor* monitor) {
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", std::chrono::duration<double>(deadline).count());
  const size_t others = world > 0 ? world - 1 : 0;
  std::string message = mpi_where() + ": " + what + " did not complete within " + seconds + " s (comm.timeout_seconds): " +
                        (others == 1 ? std::string("the other rank") : "one of the other " + std::to_string(others) + " ranks") +
                        " of this " + std::to_string(world) + "-rank communicator did not take part";
  if (monitor) {
    return message + "; every rank still sends heartbeats, so it is alive but hung, or slower than comm.timeout_seconds "
                     "allows";
  }
  return message + " (it crashed, hung, or is slower than comm.timeout_seconds allows). Heartbeats are off, so which "
                   "rank is not known: set comm.heartbeat_seconds (e.g. 10) to have a lost rank named within that time";
}

// Polls `request` until it completes, calling `between()` (which may throw) after each poll that
// found it unfinished. Between polls: nothing at first (a peer is usually just behind), then a
// sleep, so that a waiting thread leaves the CPU to the threads still computing.
template <typename Between>
void poll_until_done(MPI_Request* request, Between between) {
  for (size_t polls = 0;; ++polls) {
    int done = 0;
    DPTRAIN_MPI_CHECK(MPI_Test(request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    between();
    if (polls > 200) std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 500 : 20));
  }
}

// Polls `request` until it completes or `deadline` passes.
void wait_request(MPI_Request* request, Deadline deadline, size_t world, const std::string& what,
                  const PeerMonitor* monitor) {
  const auto limit = Clock::now() + deadline;
  poll_until_done(request, [&] {
    if (monitor && monitor->any_lost()) monitor->check(what);
    if (Clock::now() >= limit) throw CommError(collective_timeout(what, deadline, world, monitor));
  });
}

std::string mpi_where() {
  const int rank = world_rank_or(-1);
  return rank < 0 ? host_name() : "rank " + std::to_string(rank) + " on " + host_name();
}

void mpi_check(int code, const char* call, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof(text), "MPI error %d", code);
  throw CommError(mpi_where() + ": " + call + " failed (" + file + ":" + std::to_string(line) + "): " + text);
}

bool launched_by_mpi() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK") || env_set("PMI_SIZE") ||
         env_set("MPI_LOCALNRANKS") || env_set("HYDRA_CONTROL_FD");
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  DPTRAIN_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided_));
  DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiRuntime::abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

MpiCommunicator::MpiCommunicator(MPI_Comm comm) {
  DPTRAIN_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  int rank = 0, size = 1, level = MPI_THREAD_SINGLE;
  DPTRAIN_MPI_CHECK(MPI_Comm_rank(comm_, &rank));
  DPTRAIN_MPI_CHECK(MPI_Comm_size(comm_, &size));
  DPTRAIN_MPI_CHECK(MPI_Query_thread(&level));
  rank_ = static_cast<size_t>(rank);
  size_ = static_cast<size_t>(size);
  if (level == MPI_THREAD_MULTIPLE && size_ > 1) {
    queue_ = std::make_shared<Queue>();
    DPTRAIN_MPI_CHECK(MPI_Comm_dup(comm_, &queue_->comm));
    DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(queue_->comm, MPI_ERRORS_RETURN));
    collective_thread_ = std::thread(collective_loop, queue_);
  }
}

MpiCommunicator::~MpiCommunicator() {
  stop_monitoring();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (queue_) {
    bool stuck = false;
    {
      std::lock_guard<std::mutex> lock(queue_->mutex);
      queue_->stop = true;
      stuck = queue_->in_mpi;
      for (auto& task : queue_->tasks) {
        task->finish(Task::Failed, mpi_where() + ": communicator closed before the all-reduce ran");
      }
      queue_->tasks.clear();
    }
    queue_->wake.notify_all();
    if (stuck) {
      // Inside an all-reduce (or its barrier) with a peer that never arrived: only MPI_Abort or exit ends it.
      collective_thread_.detach();
      return;
    }
    collective_thread_.join();
    if (!finalized) MPI_Comm_free(&queue_->comm);
  }
  if (comm_ != MPI_COMM_NULL && !finalized && !abandoned_->load()) MPI_Comm_free(&comm_);
}

void MpiCommunicator::wait(MPI_Request* request, Deadline deadline, const std::string& what) {
  try {
    wait_request(request, deadline, size_, what, monitor_.get());
  } catch (...) {
    abandoned_->store(true);
    throw;
  }
}

void MpiCommunicator::collective_loop(std::shared_ptr<Queue> queue) {
  std::unique_lock<std::mutex> lock(queue->mutex);
  while (true) {
    queue->wake.wait(lock, [&] { return queue->stop || !queue->tasks.empty(); });
    if (queue->stop) return;
    std::shared_ptr<Task> task = std::move(queue->tasks.front());
    queue->tasks.pop_front();
    queue->in_mpi = true;
    lock.unlock();
    std::string error;
    std::exception_ptr thrown;
    task->timing.start = Clock::now();
    try {
      for (size_t first = 0; first < task->count; first += kMaxCount) {
        const int n = static_cast<int>(std::min(kMaxCount, task->count - first));
        // Every peer arrives first (a barrier, polled with pauses), then the blocking all-reduce runs
        // at the speed of MPI's tuned algorithms. MPI_Allreduce alone would spin on a core until
        // the slowest peer arrived, and on a worker whose threads fill its cores that spinning
        // slows the backward pass it waits for. The waiter holds the deadline.
        MPI_Request arrived;
        DPTRAIN_MPI_CHECK(MPI_Ibarrier(queue->comm, &arrived));
        poll_until_done(&arrived, [] {});
        DPTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(task->data) + first * task->bytes, n,
                                        task->type, MPI_SUM, queue->comm));
      }
    } catch (const CommError& e) {
      error = e.what();
    } catch (...) {  // handed to the waiting thread, never out of this one
      error = "the collective thread failed";
      thrown = std::current_exception();
    }
    task->timing.end = Clock::now();
    lock.lock();
    queue->in_mpi = false;
    task->finish(error.empty() ? Task::Done : Task::Failed, error, thrown);
  }
}

std::unique_ptr<CommRequest> MpiCommunicator::all_reduce_sum_async(float* data, size_t count) {
  return start_sum(data, count, MPI_FLOAT, sizeof(float), "all-reduce of " + std::to_string(count) + " floats");
}

std::unique_ptr<CommRequest> MpiCommunicator::all_reduce_int64_async(int64_t* data, size_t count) {
  return start_sum(data, count, MPI_INT64_T, sizeof(int64_t), "all-reduce of " + std::to_string(count) + " int64");
}

std::unique_ptr<CommRequest> MpiCommunicator::start_sum(void* data, size_t count, MPI_Datatype type, size_t bytes,
                                                        const std::string& what) {
  if (queue_) {
    auto task = std::make_shared<Task>();
    task->data = data;
    task->count = count;
    task->type = type;
    task->bytes = bytes;
    {
      std::lock_guard<std::mutex> lock(queue_->mutex);
      queue_->tasks.push_back(task);
    }
    queue_->wake.notify_one();
    return std::make_unique<ThreadedRequest>(std::move(task), what, size_, monitor_);
  }
  std::vector<MPI_Request> requests;
  for (size_t first = 0; first < count; first += kMaxCount) {
    const int n = static_cast<int>(std::min(kMaxCount, count - first));
    MPI_Request r;
    DPTRAIN_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, static_cast<char*>(data) + first * bytes, n, type, MPI_SUM, comm_, &r));
    requests.push_back(r);
  }
  return std::make_unique<MpiRequest>(std::move(requests), size_, what, monitor_, abandoned_);
}

void MpiCommunicator::all_reduce_sum(double* data, size_t count, Deadline deadline) {
  if (count > kMaxCount) throw CommError("backend mpi: all-reduce of doubles is limited to 2^30 values");
  MPI_Request r;
  DPTRAIN_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm_, &r));
  wait(&r, deadline, "all-reduce of " + std::to_string(count) + " doubles");
}

void MpiCommunicator::broadcast(void* data, size_t bytes, size_t root, Deadline deadline) {
  if (root >= size_) {
    throw CommError(mpi_where() + ": broadcast from rank " + std::to_string(root) + " in a world of " +
                    std::to_string(size_));
  }
  const auto limit = Clock::now() + deadline;
  auto* p = static_cast<char*>(data);
  for (size_t first = 0; first < bytes || (first == 0 && bytes == 0); first += kMaxCount) {
    const int n = static_cast<int>(std::min(kMaxCount, bytes - first));
    MPI_Request r;
    DPTRAIN_MPI_CHECK(MPI_Ibcast(p + first, n, MPI_BYTE, static_cast<int>(root), comm_, &r));
    wait(&r, std::chrono::duration_cast<Deadline>(limit - Clock::now()),
         "broadcast of " + std::to_string(bytes) + " bytes from rank " + std::to_string(root));
    if (bytes == 0) break;
  }
}

void MpiCommunicator::barrier(Deadline deadline) {
  MPI_Request r;
  DPTRAIN_MPI_CHECK(MPI_Ibarrier(comm_, &r));
  wait(&r, deadline, "barrier");
}

void MpiCommunicator::all_gather(const void* send, size_t bytes_each, void* recv, Deadline deadline) {
  if (bytes_each > kMaxCount) throw CommError("backend mpi: all-gather is limited to 2^30 bytes per rank");
  MPI_Request r;
  DPTRAIN_MPI_CHECK(MPI_Iallgather(send, static_cast<int>(bytes_each), MPI_BYTE, recv, static_cast<int>(bytes_each),
                                   MPI_BYTE, comm_, &r));
  wait(&r, deadline, "all-gather of " + std::to_string(bytes_each) + " bytes per rank");
}

}  // namespace dptrain

namespace dptrain {

bool MpiCommunicator::monitor_peers(double silence_seconds, std::vector<WorkerInfo> workers, Deadline deadline) {
  stop_monitoring();
  int level = MPI_THREAD_SINGLE;
  DPTRAIN_MPI_CHECK(MPI_Query_thread(&level));
  if (silence_seconds <= 0 || size_ < 2 || level != MPI_THREAD_MULTIPLE) return false;
  monitor_ = std::make_shared<PeerMonitor>(comm_, silence_seconds, std::move(workers), deadline);
  return true;
}

void MpiCommunicator::stop_monitoring() {
  if (!monitor_) return;
  monitor_->stop(monitor_->stop_bound());
  monitor_.reset();
}

}  // namespace dptrain
