// GradientReducer: sums the flat gradient buffer over all workers, bucket by bucket, each bucket
// started as soon as the backward pass has finished it, so communication overlaps computation.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "comm/all_reducer.h"

namespace dptrain {

class Timeline;

// Half-open range [begin, end) of the flat gradient buffer, in floats.
struct Bucket {
  size_t begin;
  size_t end;
};

// Cuts `count` floats into buckets of at most `bucket_floats` (at least 16), from the end of
// the buffer towards the start — the order in which the backward pass finishes them. Bucket
// boundaries are multiples of 16 floats (64 bytes) counted from the start.
std::vector<Bucket> make_buckets(size_t count, size_t bucket_floats);

// One step's gradient all-reduce: begin_step(), then ready() from Model::step's GradsReady
// callback, then finish(), after which the buffer holds the sum over all workers. The
// all-reducer (any Communicator) moves started buckets on in the background (MpiCommunicator's
// collective thread); ready() also tests them, which is what moves them where there is no such thread.
class GradientReducer {
 public:
  // Starts the all-reduce of one bucket (of whatever the reducer sums).
  using BucketStarter = std::function<std::unique_ptr<CommRequest>(const Bucket& bucket)>;

  // `grads` (count floats) lives where `comm` sums buffers (host memory for MPI, device memory
  // for NCCL or staging).
  GradientReducer(AllReducer& comm, float* grads, size_t count, size_t bucket_bytes, Deadline deadline);
  // Sums `count` values of `value_bytes` bytes each over `world` workers, each bucket through `start`
  // (train.reproducible: a bucket of exact sums is two all-reduces of doubles, its hi and lo halves).
  GradientReducer(size_t world, size_t count, size_t value_bytes, size_t bucket_bytes, Deadline deadline,
                  BucketStarter start);

  void begin_step();
  // Gradients [begin, end) are final; starts every bucket that is now complete.
  void ready(size_t begin, size_t end);
  // Starts the buckets not yet started and waits for all of them (CommError past the deadline).
  void finish();

  // Records each bucket's all-reduce (as the communicator ran it) and finish()'s wait; null: off.
  void set_timeline(Timeline* timeline) { timeline_ = timeline; }

  const std::vector<Bucket>& buckets() const { return buckets_; }
  // Seconds finish() spent waiting: communication not hidden behind the backward pass.
  double exposed_seconds() const { return exposed_seconds_; }

 private:
  void start_ready_buckets();
  void record_buckets(std::chrono::steady_clock::time_point finished);

  size_t world_;
  BucketStarter start_;
  size_t value_bytes_;
  size_t count_;
  Deadline deadline_;
  std::vector<Bucket> buckets_;  // buckets_[0] ends at count_, in backward order
  std::vector<std::unique_ptr<CommRequest>> requests_;  // one per started bucket, same order
  std::vector<std::chrono::steady_clock::time_point> launched_;  // when each request was started
  Timeline* timeline_ = nullptr;
  size_t ready_begin_;           // gradients [ready_begin_, count_) are final this step
  double exposed_seconds_ = 0;
};

}  // namespace dptrain
