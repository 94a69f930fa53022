#include "comm/reducer.h"

#include <algorithm>
#include <chrono>

#include "runtime/report/timeline.h"

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

GradientReducer::GradientReducer(AllReducer& comm, float* grads, size_t count, size_t bucket_bytes, Deadline deadline)
    : GradientReducer(comm.size(), count, sizeof(float), bucket_bytes, deadline, [&comm, grads](const Bucket& b) {
        return comm.all_reduce_sum_async(grads + b.begin, b.end - b.begin);
      }) {}

GradientReducer::GradientReducer(size_t world, size_t count, size_t value_bytes, size_t bucket_bytes,
                                 Deadline deadline, BucketStarter start)
    : world_(world),
      start_(std::move(start)),
      value_bytes_(value_bytes),
      count_(count),
      deadline_(deadline),
      buckets_(make_buckets(count, bucket_bytes / value_bytes)),
      ready_begin_(count) {}

void GradientReducer::begin_step() {
  requests_.clear();
  launched_.clear();
  ready_begin_ = count_;
}

void GradientReducer::start_ready_buckets() {
  while (requests_.size() < buckets_.size() && buckets_[requests_.size()].begin >= ready_begin_) {
    const Bucket& b = buckets_[requests_.size()];
    if (timeline_) launched_.push_back(std::chrono::steady_clock::now());
    requests_.push_back(start_(b));
  }
}

void GradientReducer::ready(size_t begin, size_t end) {
  if (world_ == 1) return;
  ready_begin_ = std::min(ready_begin_, begin);
  start_ready_buckets();
  for (auto& r : requests_) r->test();
}

void GradientReducer::finish() {
  if (world_ == 1) return;
  const auto start = std::chrono::steady_clock::now();
  ready_begin_ = 0;
  start_ready_buckets();
  const auto limit = start + deadline_;
  for (auto& r : requests_) {
    r->wait(std::max(Deadline(0), std::chrono::duration_cast<Deadline>(limit - std::chrono::steady_clock::now())));
  }
  const auto finished = std::chrono::steady_clock::now();
  exposed_seconds_ += std::chrono::duration<double>(finished - start).count();
  if (timeline_) {
    timeline_->add("all-reduce wait", "comm", TimelineTrack::Compute, start, finished,
                   {{"buckets", static_cast<double>(requests_.size())}});
    record_buckets(finished);
  }
}

void GradientReducer::record_buckets(std::chrono::steady_clock::time_point finished) {
  // Buckets run one after another; where the backend cannot say when one ran, it is drawn from
  // its launch (or the previous bucket's end) to when finish() saw it done.
  std::chrono::steady_clock::time_point previous_end{};
  for (size_t i = 0; i < requests_.size() && i < launched_.size(); ++i) {
    const CommTiming t = requests_[i]->timing();
    const auto begin = std::max({t.start == decltype(t.start){} ? launched_[i] : t.start, previous_end});
    const auto end = std::max(begin, t.end == decltype(t.end){} ? finished : t.end);
    const double queued_us = std::chrono::duration<double, std::micro>(begin - launched_[i]).count();
    timeline_->add("all-reduce", "comm", TimelineTrack::AllReduce, begin, end,
                   {{"bucket", static_cast<double>(i)},
                    {"bytes", static_cast<double>((buckets_[i].end - buckets_[i].begin) * value_bytes_)},
                    {"queued_us", queued_us}});
    previous_end = end;
  }
}

}  // namespace dptrain
