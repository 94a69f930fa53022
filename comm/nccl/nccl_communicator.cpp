#include "comm/nccl/nccl_communicator.h"

#include <chrono>
#include <thread>
#include <utility>

#include "comm/device_communicator.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

// How long the destructor gives ncclCommFinalize before aborting instead.
constexpr Deadline kFinalizeDeadline{10000};

// A started NCCL all-reduce: done when its completion event on the communicator's stream is.
class NcclRequest final : public CommRequest {
 public:
  NcclRequest(NcclCommunicator& comm, std::shared_ptr<CudaEvent> done, std::string what)
      : comm_(comm), done_(std::move(done)), what_(std::move(what)) {}

  bool test() override {
    comm_.check_failure();
    if (!finished_) finished_ = done_->done();
    return finished_;
  }
  // Orders the compute stream after the all-reduce; the watchdog holds the deadline.
  void wait(Deadline deadline) override {
    comm_.check_failure();
    if (!ordered_) comm_.order_after(done_, deadline, what_);
    ordered_ = true;
  }

 private:
  NcclCommunicator& comm_;
  std::shared_ptr<CudaEvent> done_;  // from the communicator's pool
  std::string what_;                 // "all-reduce 12 (1048576 floats)"
  bool finished_ = false;            // the host saw the event complete
  bool ordered_ = false;             // the compute stream waits on the event
};

// Sleeps a little longer the longer a wait has lasted, so waiting leaves the CPU to others.
void back_off(size_t polls) {
  if (polls > 100) std::this_thread::sleep_for(std::chrono::microseconds(polls > 10000 ? 500 : 20));
}

}  // namespace

void nccl_check(ncclResult_t result, ncclComm_t comm, const char* call, const char* file, int line) {
  if (result == ncclSuccess || result == ncclInProgress) return;
  std::string message = ncclGetErrorString(result);
  if (const char* last = ncclGetLastError(comm); last && *last) message += ": " + std::string(last);
  throw CommError("NCCL error " + std::to_string(result) + " (" + message + ") in " + call + " at " + file + ":" +
                  std::to_string(line) + " on " + device_where());
}

NcclCommunicator::NcclCommunicator(Communicator& host, CudaContext& cuda, Deadline deadline)
    : host_(host), cuda_(cuda), done_events_([] { return std::make_unique<CudaEvent>(); }), deadline_(deadline) {
  const Deadline init_deadline = deadline;
  ncclUniqueId id{};
  if (host_.rank() == 0) DPTRAIN_NCCL_CHECK(nullptr, ncclGetUniqueId(&id));
  host_.broadcast(&id, sizeof id, 0, init_deadline);
  // Owned here until the communicator exists: the destructor does not run when this constructor throws.
  CudaStream stream;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  try {
    DPTRAIN_NCCL_CHECK(nullptr, ncclCommInitRankConfig(&comm_, static_cast<int>(host_.size()), id,
                                                       static_cast<int>(host_.rank()), &config));
  } catch (...) {
    if (comm_) ncclCommAbort(comm_);
    throw;
  }
  settle(init_deadline, "creating the NCCL communicator of " + std::to_string(host_.size()) + " ranks");
  CompletionWatchdog::Hooks hooks;
  hooks.abort = [this](const std::string& failure) { abort_from_watchdog(failure); };
  hooks.health = [this] { return async_error(); };
  hooks.on_thread_start = [ordinal = static_cast<int>(cuda_.ordinal())] { cudaSetDevice(ordinal); };
  watchdog_ = std::make_unique<CompletionWatchdog>(std::move(hooks), WatchdogThread::Run);
  stream_ = stream.release();
}

NcclCommunicator::~NcclCommunicator() {
  watchdog_.reset();  // no abort from its thread from here on
  if (comm_ && !aborted_) {
    // Flush, bounded: a peer that is gone must not hang the exit.
    const ncclResult_t finalize = ncclCommFinalize(comm_);
    ncclResult_t state = finalize == ncclSuccess || finalize == ncclInProgress ? ncclInProgress : finalize;
    const auto limit = Clock::now() + kFinalizeDeadline;
    for (size_t polls = 0; state == ncclInProgress && Clock::now() < limit; ++polls) {
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
      back_off(polls);
    }
    if (state == ncclSuccess) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclCommunicator::abort_with(const std::string& reason) {
  if (comm_ && !aborted_) ncclCommAbort(comm_);
  aborted_ = true;
  if (abort_reason_.empty()) abort_reason_ = reason;
  throw CommError(device_where() + ": " + reason + "; the NCCL communicator was aborted");
}

void NcclCommunicator::abort_from_watchdog(const std::string& failure) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (comm_ && !aborted_) ncclCommAbort(comm_);  // the stuck kernels end, and the streams move on
  aborted_ = true;
  if (abort_reason_.empty()) {
    abort_reason_ = failure + " (waiting on one of the other " + std::to_string(host_.size() - 1) +
                    " ranks: it crashed, hung, or is slower than comm.timeout_seconds allows)";
  }
}

std::string NcclCommunicator::async_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (aborted_ || !comm_) return "";
  ncclResult_t state = ncclSuccess;
  const ncclResult_t query = ncclCommGetAsyncError(comm_, &state);
  if (query != ncclSuccess) return std::string("ncclCommGetAsyncError: ") + ncclGetErrorString(query);
  if (state == ncclSuccess || state == ncclInProgress) return "";
  const char* last = ncclGetLastError(comm_);
  return ncclGetErrorString(state) + (last && *last ? std::string(": ") + last : "");
}

void NcclCommunicator::check_failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (aborted_) {
    throw CommError(device_where() + ": " + abort_reason_ + "; the NCCL communicator was aborted");
  }
}

void NcclCommunicator::settle(Deadline deadline, const std::string& what) {
  if (aborted_) throw CommError(device_where() + ": NCCL communicator was aborted earlier: " + what + " impossible");
  const auto limit = Clock::now() + deadline;
  for (size_t polls = 0;; ++polls) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t query = ncclCommGetAsyncError(comm_, &state);
    if (query != ncclSuccess) abort_with(what + " failed: " + ncclGetErrorString(query));
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) {
      const char* last = ncclGetLastError(comm_);
      abort_with(what + " failed: " + ncclGetErrorString(state) + (last && *last ? std::string(": ") + last : ""));
    }
    if (Clock::now() >= limit) {
      abort_with(what + " did not finish within " + std::to_string(deadline.count() / 1000.0) +
                 " s: one of the other " + std::to_string(host_.size() - 1) +
                 " ranks did not take part (it crashed, hung, or is slower than comm.timeout_seconds allows)");
    }
    back_off(polls);
  }
}

void NcclCommunicator::order_after(const std::shared_ptr<CudaEvent>& done, Deadline deadline, const std::string& what) {
  // Later compute-stream work (the optimizer) sees the reduced gradients; the host goes on.
  DPTRAIN_CUDA_CHECK(cudaStreamWaitEvent(cuda_.stream(), done->get(), 0));
  watchdog_->watch([done] { return done->done(); }, CompletionWatchdog::Clock::now() + deadline,
                   what + ", waited on for up to " + std::to_string(deadline.count() / 1000.0) + " s,");
}

std::shared_ptr<CudaEvent> NcclCommunicator::start_all_reduce(void* device_data, size_t count, ncclDataType_t type,
                                                              const std::string& values, std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  what = "all-reduce " + std::to_string(++started_) + " (" + std::to_string(count) + " " + values + ")";
  // The buffer is final once the work queued so far on the compute stream is done. (An event may
  // be recorded again once a stream waits on it: the wait keeps the state it had.)
  ready_.record(cuda_.stream());
  DPTRAIN_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_.get(), 0));
  DPTRAIN_NCCL_CHECK(comm_, ncclAllReduce(device_data, device_data, count, type, ncclSum, comm_, stream_));
  settle(Deadline(60000), "queueing " + what);
  std::shared_ptr<CudaEvent> done = done_events_.acquire();
  done->record(stream_);
  return done;
}

std::unique_ptr<CommRequest> NcclCommunicator::all_reduce_sum_async(float* device_data, size_t count) {
  check_failure();
  std::string what;
  std::shared_ptr<CudaEvent> done = start_all_reduce(device_data, count, ncclFloat, "floats", what);
  return std::make_unique<NcclRequest>(*this, std::move(done), what);
}

void NcclCommunicator::sum(double* device_values, size_t count) {
  check_failure();
  std::string what;
  const std::shared_ptr<CudaEvent> done =
      start_all_reduce(device_values, count, ncclDouble, "doubles of batch statistics", what);
  order_after(done, deadline_, what);
}

namespace {

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, Backend& backend, Deadline deadline) {
  return std::make_unique<NcclCommunicator>(host, cuda_context(backend), deadline);
}

}  // namespace

DPTRAIN_REGISTER_DEVICE_TRANSPORT(Nccl, cuda, make_nccl_communicator);

}  // namespace dptrain
