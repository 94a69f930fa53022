#include "launcher/stop_signals.h"

#include <unistd.h>

#include <csignal>
#include <initializer_list>

namespace dptrain::launcher {

namespace {

std::atomic<int> stop_signal{0};
std::atomic<int> leave_signal{0};
bool announce_stop = false;
std::atomic<bool> training{false};  // stop_after_a_step_from_now() was called

void say(const char* text, size_t length) {
  ssize_t ignored = ::write(STDERR_FILENO, text, length);
  (void)ignored;
}

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  if (!training.load()) {
    static const char setup[] = "dptrain: stop signal received during set-up: ending now (nothing to save yet)\n";
    if (announce_stop) say(setup, sizeof(setup) - 1);
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  if (!stop_signal.compare_exchange_strong(none, signal)) {
    // Asked twice: the default action (terminate) now.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  if (announce_stop) {
    // Also what mpirun sends the survivors when a worker died without --enable-recovery: say what
    // arrived, not why.
    static const char term[] = "dptrain: SIGTERM received: ";
    static const char other[] = "dptrain: stop signal received: ";
    static const char rest[] = "finishing the current step, then saving a checkpoint (signal again to end at once)\n";
    if (signal == SIGTERM) {
      say(term, sizeof(term) - 1);
    } else {
      say(other, sizeof(other) - 1);
    }
    say(rest, sizeof(rest) - 1);
  }
}

extern "C" void on_leave_signal(int signal) {
  leave_signal.store(signal);
  static const char message[] = "dptrain: SIGUSR1 received: this worker leaves the job at the end of the epoch\n";
  say(message, sizeof(message) - 1);
}

}  // namespace

const std::atomic<int>& install_stop_handlers(bool announce) {
  static_assert(std::atomic<int>::is_always_lock_free, "the stop flag is set from a signal handler");
  announce_stop = announce;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGTERM, SIGINT, SIGUSR2}) sigaction(signal, &action, nullptr);
  return stop_signal;
}

void stop_after_a_step_from_now() { training.store(true); }

const std::atomic<int>& install_leave_handler() {
  struct sigaction action {};
  action.sa_handler = on_leave_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, nullptr);
  return leave_signal;
}

}  // namespace dptrain::launcher
