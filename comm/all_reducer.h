// AllReducer: the one operation the gradient reducer needs from a transport — start an in-place
// sum of a float buffer over every worker, then wait for it with a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

namespace dptrain {

// How long a collective may wait for its peers before it fails and names who did not answer.
using Deadline = std::chrono::milliseconds;

// When a collective moved its data: from when it started to when it completed (steady clock).
// Zero time points where the backend cannot tell.
struct CommTiming {
  std::chrono::steady_clock::time_point start{};
  std::chrono::steady_clock::time_point end{};
};

// A started, not yet finished collective.
class CommRequest {
 public:
  virtual ~CommRequest() = default;
  // True once the operation has completed; never blocks.
  virtual bool test() = 0;
  // Blocks until completion or until `deadline` passes (then throws CommError).
  virtual void wait(Deadline deadline) = 0;
  // When it ran; meaningful once test() returned true or wait() returned.
  virtual CommTiming timing() const { return {}; }
};

// A collective that had completed when it was returned (one worker, or a blocking fallback).
class FinishedRequest final : public CommRequest {
 public:
  bool test() override { return true; }
  void wait(Deadline) override {}
};

// Sums float buffers over the workers of a job. Every Communicator is one; GradientReducer
// (comm/reducer.h) depends on nothing more.
class AllReducer {
 public:
  virtual ~AllReducer() = default;
  // Workers taking part; with 1 a sum is the buffer itself.
  virtual size_t size() const = 0;
  // Starts an in-place sum over all workers of `count` floats at `data` (host or device memory,
  // as the implementation documents). The buffer must stay valid until the request completes.
  virtual std::unique_ptr<CommRequest> all_reduce_sum_async(float* data, size_t count) = 0;
};

}  // namespace dptrain
