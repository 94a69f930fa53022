#include "comm/completion_watchdog.h"

#include <exception>
#include <string>
#include <utility>

#include "runtime/core/errors.h"

namespace dptrain {

CompletionWatchdog::CompletionWatchdog(Hooks hooks, WatchdogThread thread, std::chrono::microseconds period)
    : hooks_(std::move(hooks)), period_(period) {
  if (thread == WatchdogThread::Run) thread_ = std::thread([this] { run(); });
}

CompletionWatchdog::~CompletionWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CompletionWatchdog::watch(Done done, Clock::time_point deadline, std::string what) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (thread_error_) std::rethrow_exception(thread_error_);
    if (!failure_.empty()) throw CommError(failure_);
    watched_.push_back({std::move(done), deadline, std::move(what)});
  }
  wake_.notify_all();
}

void CompletionWatchdog::poll() {
  std::vector<Watched> round;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_.empty()) return;
    round.swap(watched_);
  }
  // The operations are polled without the lock: watch() may add more meanwhile.
  std::vector<Watched> still;
  std::string failure;
  const Clock::time_point now = hooks_.now();
  for (Watched& w : round) {
    bool done = false;
    if (failure.empty()) {
      try {
        done = w.done();
      } catch (const std::exception& e) {
        failure = "polling " + w.what + " failed: " + e.what();
      }
    }
    if (!done) still.push_back(std::move(w));
  }
  if (failure.empty() && hooks_.health) {
    const std::string error = hooks_.health();
    if (!error.empty()) failure = "the transport failed while " + std::to_string(still.size()) +
                                  " operation(s) were pending: " + error;
  }
  if (failure.empty()) {
    // The earliest-started operation past its deadline is the one to name: the others queue behind it.
    for (const Watched& w : still) {
      if (now >= w.deadline) {
        failure = w.what + " did not complete in time";
        break;
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    still.insert(still.end(), std::make_move_iterator(watched_.begin()), std::make_move_iterator(watched_.end()));
    watched_.swap(still);
  }
  if (!failure.empty()) fail(failure);
}

void CompletionWatchdog::fail(const std::string& failure) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_.empty()) return;
    failure_ = failure;
  }
  if (hooks_.abort) hooks_.abort(failure);
}

void CompletionWatchdog::check() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_error_) std::rethrow_exception(thread_error_);
  if (!failure_.empty()) throw CommError(failure_);
}

std::string CompletionWatchdog::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

size_t CompletionWatchdog::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return watched_.size();
}

void CompletionWatchdog::run() {
  try {
    serve();
  } catch (...) {  // kept for check() and watch() on the waiting threads, never out of this one
    std::string failure = "the completion watchdog stopped";
    try {
      std::rethrow_exception(std::current_exception());
    } catch (const std::exception& e) {
      failure += std::string(": ") + e.what();
    } catch (...) {
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      thread_error_ = std::current_exception();
    }
    try {
      fail(failure);  // nothing watches the pending operations any more: abort them
    } catch (...) {
    }
  }
}

void CompletionWatchdog::serve() {
  if (hooks_.on_thread_start) hooks_.on_thread_start();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // Idle (nothing pending, or failed already): sleep until watch() or the destructor wakes it.
    if (watched_.empty() || !failure_.empty()) {
      wake_.wait(lock, [this] { return stopping_ || (!watched_.empty() && failure_.empty()); });
      continue;
    }
    lock.unlock();
    poll();
    lock.lock();
    wake_.wait_for(lock, period_, [this] { return stopping_; });
  }
}

}  // namespace dptrain
