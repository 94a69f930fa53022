// CompletionWatchdog: watches device operations that the host does not wait for (an all-reduce the
// compute stream waits on with an event), and aborts their transport when one misses its deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dptrain {

// Whether a watchdog polls from a thread of its own, or only when poll() is called (tests).
enum class WatchdogThread { Run, None };

// One thread per transport polls the operations it was given: one that completes is dropped; when
// the transport reports an asynchronous error, or an operation's deadline passes, `abort` is called
// once (on the watchdog's thread) and the failure is kept, naming the operation that was waited
// on; check() then throws it as a CommError on the caller's thread. Thread-safe.
class CompletionWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  // Polls an operation: true once it has completed.
  using Done = std::function<bool()>;

  // What the watchdog calls on its transport, and its clock.
  struct Hooks {
    // Aborts the transport with the failure's text (pending operations then never complete).
    std::function<void(const std::string& failure)> abort;
    // The transport's asynchronous error, "" while there is none (ncclCommGetAsyncError).
    std::function<std::string()> health;
    // Called first on the watchdog's own thread (binds it to the device).
    std::function<void()> on_thread_start;
    // The clock deadlines are measured on.
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
  };

  // `period`: how long the thread sleeps between rounds while operations are pending.
  CompletionWatchdog(Hooks hooks, WatchdogThread thread, std::chrono::microseconds period = std::chrono::microseconds(500));
  // Stops and joins the thread; operations still pending are no longer watched.
  ~CompletionWatchdog();
  CompletionWatchdog(const CompletionWatchdog&) = delete;
  CompletionWatchdog& operator=(const CompletionWatchdog&) = delete;

  // Watches `done` until it completes; past `deadline` the transport is aborted with a failure
  // naming `what` ("all-reduce 12 (1048576 floats)") and `peers` (who may not have taken part).
  // CommError when the watchdog has failed already.
  void watch(Done done, Clock::time_point deadline, std::string what);
  // One round: drops completed operations; aborts on an asynchronous error or a passed deadline.
  // The thread calls it; with WatchdogThread::None the caller does.
  void poll();
  // Throws CommError with the failure once there is one.
  void check() const;
  // The failure, "" while none.
  std::string failure() const;
  // Operations watched and not yet complete.
  size_t pending() const;

 private:
  struct Watched {
    Done done;
    Clock::time_point deadline;
    std::string what;
  };
  // Records `failure` and aborts the transport, once.
  void fail(const std::string& failure);
  // The thread: serve() until stopped; what escapes it is kept in thread_error_ and aborts the transport.
  void run();
  void serve();

  Hooks hooks_;
  std::chrono::microseconds period_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Watched> watched_;
  std::string failure_;
  std::exception_ptr thread_error_;  // what stopped the thread; check() and watch() rethrow it
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dptrain
