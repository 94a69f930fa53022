#include "runtime/loader.h"

#include <chrono>

#include "runtime/errors.h"

namespace dptrain {

BatchLoader::BatchLoader(const Dataset& dataset, size_t max_batch) : dataset_(dataset), max_batch_(max_batch) {
  for (auto& s : storage_) s = Tensor(batch_shape(max_batch, dataset.sample_shape()));
}

BatchLoader::~BatchLoader() {
  if (pending_.valid()) pending_.wait();
}

void BatchLoader::fill(Batch& batch) {
  const size_t per_sample = num_elements(dataset_.sample_shape());
  batch.labels.resize(batch.ids.size());
  for (size_t i = 0; i < batch.ids.size(); ++i) {
    dataset_.get(batch.ids[i], batch.inputs.data() + i * per_sample, &batch.labels[i]);
  }
}

void BatchLoader::prefetch(std::vector<uint64_t> ids) {
  if (pending_.valid()) throw Error("BatchLoader: prefetch called twice without next()");
  if (ids.size() > max_batch_) {
    throw ShapeError("batch of " + std::to_string(ids.size()) + " exceeds loader capacity " + std::to_string(max_batch_));
  }
  Batch& batch = slots_[filling_];
  batch.inputs = storage_[filling_].leading(ids.size());
  batch.ids = std::move(ids);
  pending_ = std::async(std::launch::async, [this, &batch] { fill(batch); });
}

Batch& BatchLoader::next() {
  if (!pending_.valid()) throw Error("BatchLoader: next() called without prefetch()");
  const auto start = std::chrono::steady_clock::now();
  std::future<void> done = std::move(pending_);
  done.get();
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Batch& ready = slots_[filling_];
  filling_ ^= 1;
  return ready;
}

}  // namespace dptrain
