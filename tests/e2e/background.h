// A command started in the background for the end-to-end tests, with its output in a file.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace dptrain::e2e {

// A shell command run in the background (stdout and stderr into `log`), in a process group of its
// own. A command still running when the test ends is sent the `ending` signals, 0.2 s apart, given
// `grace_seconds` to exit, and then its whole group is killed (mpirun and its workers with it);
// with no `ending` signals the group is killed at once.
class Background {
 public:
  static constexpr int kRunning = -2;  // wait(): it still runs

  Background(const std::string& command, const std::string& log, std::vector<int> ending = {},
             double grace_seconds = 0)
      : log_(log), ending_(std::move(ending)), grace_seconds_(grace_seconds) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", ("exec " + command + " > " + log + " 2>&1").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ <= 0 || finished()) return;
    for (size_t i = 0; i < ending_.size(); ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      kill(pid_, ending_[i]);
    }
    if (wait(grace_seconds_) == kRunning) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  // The exit code (-1: ended by a signal), or kRunning when it still runs after `seconds`.
  int wait(double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (code_ == kRunning) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      } else if (std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } else {
        break;
      }
    }
    return code_;
  }
  // True once it exited (polls without waiting).
  bool finished() { return wait(0) != kRunning; }
  std::string output() const { return test_util::read_file(log_); }

 private:
  std::string log_;
  std::vector<int> ending_;
  double grace_seconds_;
  pid_t pid_ = -1;
  int code_ = kRunning;
};

}  // namespace dptrain::e2e
