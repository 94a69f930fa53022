// A program dptrain starts and watches: mpirun and ompi-server (`dptrain launch`), gnuplot
// (`dptrain plot`). Started without a shell; every wait on it is a poll with a deadline, and it can
// always be ended.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace dptrain::launcher {

// One child process, in its own process group (a Ctrl-C at the terminal reaches the supervisor
// only, which decides what the child gets), reading stdin from /dev/null, writing to the
// supervisor's stdout and stderr or to one file. Ended (SIGTERM, then SIGKILL) and reaped on destruction.
class ChildProcess {
 public:
  // Starts argv[0] (looked up on PATH when it holds no '/'); throws UsageError naming the program
  // when it cannot be started. `output_fd`: an open descriptor that receives the child's stdout and
  // stderr; -1: the child writes to this process's.
  explicit ChildProcess(const std::vector<std::string>& argv, int output_fd = -1);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // True once it has ended (polls, never blocks).
  bool exited();
  // Its exit code once exited(): the code it gave, or 128 + N when signal N ended it.
  int exit_code() const { return exit_code_; }
  // Polls up to `seconds` for it to end; true when it did.
  bool wait_for(double seconds);
  // Sends `signal` unless it has already ended.
  void send(int signal);
  // Sends SIGTERM, waits up to `grace_seconds`, then SIGKILL, and waits (bounded) for it to go.
  // False when it was still there after all that (a process stuck in the kernel).
  bool terminate(double grace_seconds);

 private:
  std::string name_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// The path of `program` as posix_spawnp would find it: itself when it holds a '/', else the first
// executable of that name on PATH; "" when there is none.
std::string find_program(const std::string& program);

}  // namespace dptrain::launcher
