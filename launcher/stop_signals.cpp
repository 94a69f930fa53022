#include "launcher/stop_signals.h"

#include <unistd.h>

#include <csignal>
#include <initializer_list>

namespace dptrain::launcher {

namespace {

std::atomic<int> stop_signal{0};
bool announce_stop = false;

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  if (!stop_signal.compare_exchange_strong(none, signal)) {
    // Asked twice: the default action (terminate) now.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  if (announce_stop) {
    static const char message[] =
        "dptrain: stop requested: finishing the current step, then saving a checkpoint (signal again to stop at "
        "once)\n";
    ssize_t ignored = ::write(STDERR_FILENO, message, sizeof(message) - 1);
    (void)ignored;
  }
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

}  // namespace dptrain::launcher
