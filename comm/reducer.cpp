#include "comm/reducer.h"

#include <algorithm>
#include <chrono>

namespace dptrain {

namespace {

constexpr size_t kAlignFloats = 16;  // 64 bytes

}  // namespace

std::vector<Bucket> make_buckets(size_t count, size_t bucket_floats) {
  bucket_floats = std::max(kAlignFloats, bucket_floats / kAlignFloats * kAlignFloats);
  std::vector<Bucket> buckets;
  size_t end = count;
  while (end > 0) {
    // The first bucket ends at `count`; its start, and every later boundary, is 16-aligned
    // (rounded up, so that no bucket exceeds bucket_floats).
    const size_t begin = end > bucket_floats ? (end - bucket_floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats : 0;
    buckets.push_back({begin, end});
    end = begin;
  }
  return buckets;
}

GradientReducer::GradientReducer(Communicator& comm, float* grads, size_t count, size_t bucket_bytes,
                                 Deadline deadline)
    : comm_(comm),
      grads_(grads),
      count_(count),
      deadline_(deadline),
      buckets_(make_buckets(count, bucket_bytes / sizeof(float))),
      ready_begin_(count) {}

void GradientReducer::begin_step() {
  requests_.clear();
  ready_begin_ = count_;
}

void GradientReducer::start_ready_buckets() {
  while (requests_.size() < buckets_.size() && buckets_[requests_.size()].begin >= ready_begin_) {
    const Bucket& b = buckets_[requests_.size()];
    requests_.push_back(comm_.all_reduce_sum_async(grads_ + b.begin, b.end - b.begin));
  }
}

void GradientReducer::ready(size_t begin, size_t end) {
  if (comm_.size() == 1) return;
  ready_begin_ = std::min(ready_begin_, begin);
  start_ready_buckets();
  for (auto& r : requests_) r->test();
}

void GradientReducer::finish() {
  if (comm_.size() == 1) return;
  const auto start = std::chrono::steady_clock::now();
  ready_begin_ = 0;
  start_ready_buckets();
  const auto limit = start + deadline_;
  for (auto& r : requests_) {
    r->wait(std::max(Deadline(0), std::chrono::duration_cast<Deadline>(limit - std::chrono::steady_clock::now())));
  }
  exposed_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace dptrain
