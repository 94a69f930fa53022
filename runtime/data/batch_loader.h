// BatchLoader: decodes (and augments) the next batch on background threads while the current one trains.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/core/tensor.h"
#include "runtime/data/augment.h"
#include "runtime/data/dataset.h"

namespace dptrain {

// One worker's share of a global batch, on the host.
struct Batch {
  Tensor inputs;                // (N, C, H, W)
  std::vector<int32_t> labels;  // (N)
  std::vector<uint64_t> ids;    // (N) global sample indices
};

// Double-buffered loading: `prefetch` starts filling one slot in the background; `next` waits
// for it and hands it over, valid until the next call to `next`. Errors (a bad file) surface
// from `next` as the exception the data set threw (the one of the lowest failing position); nothing
// thrown on a pool thread ends the process. The constructor checks its buffers against the memory
// budget first: AllocationError naming data.shape when one sample does not fit, train.batch_size when
// the batch does not.
//
// A pool of `decode_threads` threads, owned by the loader and joined by its destructor, shares each
// batch sample by sample. Every sample lands at its own position and its augmentation is keyed by
// (seed, epoch, global index) alone, so a batch is the same whatever the thread count.
class BatchLoader {
 public:
  // `augment` (may be null: no augmentation) must outlive the loader. `decode_threads` 0 picks
  // default_decode_threads(dataset).
  BatchLoader(const Dataset& dataset, size_t max_batch, const Augmentation* augment = nullptr, uint64_t seed = 0,
              size_t decode_threads = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Starts loading samples `ids` (at most max_batch); `epoch` keys their augmentation.
  void prefetch(std::vector<uint64_t> ids, uint64_t epoch = 0);
  Batch& next();
  // Seconds `next` spent waiting for data since construction.
  double wait_seconds() const { return wait_seconds_; }
  size_t decode_threads() const { return num_threads_; }

  // 1 for data sets whose get() only converts bytes in memory (a single thread keeps far ahead of the
  // training step and leaves the cores to the compute threads); for data sets that decode a file per
  // sample, one per core up to 4.
  static size_t default_decode_threads(const Dataset& dataset);

 private:
  // A pool thread: serve() until stopped; an exception that escapes it is kept for next() to rethrow.
  void work(float* scratch);
  void serve(float* scratch);
  void load(Batch& batch, size_t position, uint64_t epoch, float* scratch);
  // Every thread finished the current job or stopped on an error. Hold mutex_.
  bool job_done() const { return threads_finished_ + threads_stopped_ >= num_threads_; }

  const Dataset& dataset_;
  const Augmentation* augment_;
  uint64_t seed_;
  size_t max_batch_;
  Shape sample_shape_;
  size_t per_sample_;
  Batch slots_[2];
  Tensor storage_[2];     // (max_batch, C, H, W) per slot
  std::vector<std::vector<float>> scratch_;  // (C, H, W) per thread, for the augmentation
  size_t filling_ = 0;    // slot the pending prefetch writes
  bool pending_ = false;  // a prefetch has been started and not yet collected by next()
  double wait_seconds_ = 0;

  // The job the pool works on; guarded by mutex_ except next_position_.
  std::mutex mutex_;
  std::condition_variable job_posted_;
  std::condition_variable job_finished_;
  uint64_t job_ = 0;  // number of the latest job
  Batch* job_batch_ = nullptr;
  uint64_t job_epoch_ = 0;
  std::atomic<size_t> next_position_{0};
  size_t threads_finished_ = 0;
  size_t error_position_ = 0;
  std::exception_ptr error_;
  std::exception_ptr thread_error_;  // what stopped a pool thread; rethrown by every later next()
  size_t threads_stopped_ = 0;
  bool stop_ = false;
  size_t num_threads_ = 1;
  std::vector<std::thread> threads_;
};

}  // namespace dptrain
