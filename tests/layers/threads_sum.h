// ThreadsSum: a CrossWorkerSum for workers simulated by threads of one process.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "layers/layer.h"

namespace dptrain::testing {

// A CrossWorkerSum for workers simulated by threads of one process: each call adds its values
// into a shared total, waits until every worker has called, and takes the total.
class ThreadsSum final : public CrossWorkerSum {
 public:
  explicit ThreadsSum(size_t workers) : workers_(workers) {}
  void sum(double* values, size_t count) override {
    std::unique_lock<std::mutex> guard(mutex_);
    wait(guard, [&] { return leaving_ == 0; });  // the previous round has been handed out
    if (total_.empty()) total_.assign(count, 0.0);
    for (size_t i = 0; i < count; ++i) total_[i] += values[i];
    if (++arrived_ == workers_) {
      leaving_ = workers_;
      done_.notify_all();
    } else {
      wait(guard, [&] { return leaving_ > 0; });
    }
    std::copy(total_.begin(), total_.end(), values);
    if (--leaving_ == 0) {
      arrived_ = 0;
      total_.clear();
      done_.notify_all();
    }
  }

 private:
  // Waits for `ready`, at most a minute (a simulated worker that never arrives fails the test).
  template <class Ready>
  void wait(std::unique_lock<std::mutex>& guard, Ready ready) {
    if (!done_.wait_for(guard, std::chrono::seconds(60), ready)) {
      throw std::runtime_error("ThreadsSum: the simulated workers did not all arrive within 60 s");
    }
  }

  size_t workers_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::vector<double> total_;
  size_t arrived_ = 0, leaving_ = 0;
};

}  // namespace dptrain::testing
