#include "runtime/data/batch_loader.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"

namespace dptrain {

size_t BatchLoader::default_decode_threads(const Dataset& dataset) {
  if (dataset.load_cost() == LoadCost::Copy) return 1;
  return std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
}

BatchLoader::BatchLoader(const Dataset& dataset, size_t max_batch, const Augmentation* augment, uint64_t seed,
                         size_t decode_threads)
    : dataset_(dataset),
      augment_(augment),
      seed_(seed),
      max_batch_(max_batch),
      sample_shape_(dataset.sample_shape()),
      per_sample_(num_elements(sample_shape_)) {
  num_threads_ = decode_threads > 0 ? decode_threads : default_decode_threads(dataset);
  // One sample in each of the two slots and each thread's scratch must fit whatever the batch; the
  // batch then sets the rest.
  const std::string shape = to_string(sample_shape_);
  const size_t sample_bytes = checked_bytes({per_sample_, sizeof(float)}, "one sample of " + shape, "data.shape");
  reserve(checked_bytes({2 + (augment ? num_threads_ : 0), sample_bytes}, "the loader's samples", "data.shape"),
          "the loader's buffers for one sample of " + shape, "data.shape");
  reserve(checked_bytes({2, max_batch, sample_bytes}, "the loader's batches", "train.batch_size"),
          "the loader's two batches of " + std::to_string(max_batch) + " samples of " + shape, "train.batch_size");
  for (auto& s : storage_) s = Tensor(batch_shape(max_batch, sample_shape_));
  scratch_.resize(num_threads_, std::vector<float>(augment_ ? per_sample_ : 0));
  threads_.reserve(num_threads_);
  try {
    for (size_t t = 0; t < num_threads_; ++t) threads_.emplace_back([this, t] { work(scratch_[t].data()); });
  } catch (...) {  // a thread could not be started: stop the others before giving up
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    job_posted_.notify_all();
    for (auto& t : threads_) t.join();
    throw;
  }
}

BatchLoader::~BatchLoader() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // Let a pending batch finish: its slot must stay valid while threads write to it.
    if (pending_) job_finished_.wait(lock, [this] { return job_done(); });
    stop_ = true;
  }
  job_posted_.notify_all();
  for (auto& t : threads_) t.join();
}

void BatchLoader::load(Batch& batch, size_t position, uint64_t epoch, float* scratch) {
  float* out = batch.inputs.data() + position * per_sample_;
  const uint64_t id = batch.ids[position];
  dataset_.get(id, out, &batch.labels[position]);
  if (augment_) augment_->apply(out, sample_shape_, seed_, epoch, id, scratch);
}

void BatchLoader::work(float* scratch) {
  try {
    serve(scratch);
  } catch (...) {  // not from a sample (those are kept per position): this thread stops, next() rethrows it
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_error_) thread_error_ = std::current_exception();
    ++threads_stopped_;
    job_finished_.notify_all();
  }
}

void BatchLoader::serve(float* scratch) {
  uint64_t done = 0;
  for (;;) {
    Batch* batch;
    uint64_t epoch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      job_posted_.wait(lock, [&] { return stop_ || job_ != done; });
      if (stop_) return;
      done = job_;
      batch = job_batch_;
      epoch = job_epoch_;
    }
    const size_t n = batch->ids.size();
    for (size_t i; (i = next_position_.fetch_add(1)) < n;) {
      try {
        load(*batch, i, epoch, scratch);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_ || i < error_position_) {
          error_ = std::current_exception();
          error_position_ = i;
        }
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++threads_finished_;
    if (job_done()) job_finished_.notify_all();
  }
}

void BatchLoader::prefetch(std::vector<uint64_t> ids, uint64_t epoch) {
  if (pending_) throw Error("BatchLoader: prefetch called twice without next()");
  if (ids.size() > max_batch_) {
    throw ShapeError("batch of " + std::to_string(ids.size()) + " exceeds loader capacity " +
                     std::to_string(max_batch_));
  }
  Batch& batch = slots_[filling_];
  batch.inputs = storage_[filling_].leading(ids.size());
  batch.labels.resize(ids.size());
  batch.ids = std::move(ids);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_batch_ = &batch;
    job_epoch_ = epoch;
    next_position_.store(0);
    threads_finished_ = 0;
    error_ = nullptr;
    ++job_;
    pending_ = true;
  }
  job_posted_.notify_all();
}

Batch& BatchLoader::next() {
  if (!pending_) throw Error("BatchLoader: next() called without prefetch()");
  const auto start = std::chrono::steady_clock::now();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    job_finished_.wait(lock, [this] { return job_done(); });
    pending_ = false;
    error = std::exchange(error_, nullptr);
    if (thread_error_) error = thread_error_;
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (error) std::rethrow_exception(error);
  Batch& ready = slots_[filling_];
  filling_ ^= 1;
  return ready;
}

}  // namespace dptrain
