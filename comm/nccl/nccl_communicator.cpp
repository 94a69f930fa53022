#include "comm/nccl/nccl_communicator.h"

#include <chrono>
#include <thread>

#include "comm/device_communicator.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

// How long the destructor gives ncclCommFinalize before aborting instead.
constexpr Deadline kFinalizeDeadline{10000};

// A started NCCL all-reduce: done when its event on the communicator's stream is.
class NcclRequest final : public CommRequest {
 public:
  NcclRequest(NcclCommunicator& comm, size_t count) : comm_(comm), count_(count) {}

  CudaEvent& done_event() { return done_; }
  bool test() override {
    if (!finished_) finished_ = done_.done();
    return finished_;
  }
  void wait(Deadline deadline) override {
    if (finished_) return;
    comm_.wait_event(done_, deadline, "all-reduce of " + std::to_string(count_) + " floats");
    finished_ = true;
  }

 private:
  NcclCommunicator& comm_;
  size_t count_;
  CudaEvent done_;
  bool finished_ = false;
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

NcclCommunicator::NcclCommunicator(Communicator& host, CudaContext& cuda, Deadline init_deadline)
    : host_(host), cuda_(cuda) {
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
  stream_ = stream.release();
}

NcclCommunicator::~NcclCommunicator() {
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
  throw CommError(device_where() + ": " + reason + "; the NCCL communicator was aborted");
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

void NcclCommunicator::wait_event(const CudaEvent& done, Deadline deadline, const std::string& what) {
  const auto limit = Clock::now() + deadline;
  for (size_t polls = 0;; ++polls) {
    if (done.done()) {
      // Later compute-stream work (the optimizer) sees the reduced gradients.
      DPTRAIN_CUDA_CHECK(cudaStreamWaitEvent(cuda_.stream(), done.get(), 0));
      return;
    }
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess && state != ncclInProgress) {
      abort_with(what + " failed: " + ncclGetErrorString(state));
    }
    if (Clock::now() >= limit) {
      abort_with(what + " did not complete within " + std::to_string(deadline.count() / 1000.0) +
                 " s: one of the other " + std::to_string(host_.size() - 1) +
                 " ranks did not take part (it crashed, hung, or is slower than comm.timeout_seconds allows)");
    }
    back_off(polls);
  }
}

std::unique_ptr<CommRequest> NcclCommunicator::all_reduce_sum_async(float* device_data, size_t count) {
  if (aborted_) throw CommError(device_where() + ": NCCL communicator was aborted earlier: no further all-reduce");
  auto request = std::make_unique<NcclRequest>(*this, count);
  // The bucket is final once the work queued so far on the compute stream is done.
  CudaEvent ready;
  ready.record(cuda_.stream());
  DPTRAIN_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready.get(), 0));
  DPTRAIN_NCCL_CHECK(comm_, ncclAllReduce(device_data, device_data, count, ncclFloat, ncclSum, comm_, stream_));
  settle(Deadline(60000), "queueing an all-reduce of " + std::to_string(count) + " floats");
  request->done_event().record(stream_);
  return request;
}

namespace {

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, Backend& backend, Deadline deadline) {
  return std::make_unique<NcclCommunicator>(host, cuda_context(backend), deadline);
}

}  // namespace

DPTRAIN_REGISTER_DEVICE_TRANSPORT(Nccl, cuda, make_nccl_communicator);

}  // namespace dptrain
